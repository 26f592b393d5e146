"""Run statistics of SpikeLinear: spikes, ACs, MACs, firing rates, per modality, checked against spike trains."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from spikemllm import QuantSpec, SpikeLinear, collect_stats
from spikemllm.nn import RunStats, vision_mask
from spikemllm.quant import quantize

IN, OUT = 24, 10
CASES = [("tc-lif", True, 3, 5), ("tc-lif", True, 4, 4), ("if", True, 7, 2), ("if", False, 15, 4)]


def codes(x2: torch.Tensor, coder, signed: bool, t_tok: torch.Tensor, clip: float = 1.0) -> torch.Tensor:
    qm = coder.qmax_for(t_tok.unsqueeze(1))
    spec = QuantSpec(bits=8, symmetric=signed, granularity="per-token", clip_ratio=clip)
    return quantize(x2, spec, qmax=qm).q


def expected(m: SpikeLinear, x: torch.Tensor, mask: torch.Tensor, t_tok: torch.Tensor, sel: torch.Tensor):
    """Counts for the tokens in ``sel``, from the spike trains ``coder.encode(q, T)`` themselves."""
    x2 = x.reshape(-1, IN)
    q = codes(x2, m.coder, m.coder.signed, t_tok)
    trains = m.coder.encode(q[sel], t_tok[sel].unsqueeze(1))  # [T_max(sel), k, IN]
    nz = trains != 0
    return dict(tokens=int(sel.sum()), spikes=int(nz.sum()), per_step=nz.sum((1, 2)).tolist(),
                steps=int(t_tok[sel].sum()))


@pytest.mark.parametrize("coder,signed,t_text,t_vision", CASES)
@pytest.mark.parametrize("mode", ["faithful", "fused", "fakequant"])
def test_counts_match_the_spike_trains(coder, signed, t_text, t_vision, mode):
    g = torch.Generator().manual_seed(t_text + 10 * t_vision)
    m = SpikeLinear.from_linear(nn.Linear(IN, OUT), coder=coder, signed=signed, t_text=t_text, t_vision=t_vision,
                                mode=mode)
    x = torch.randn(2, 6, IN, generator=g) * 2
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[0, :4] = True
    mask[1, 5] = True
    t_tok = torch.where(mask.reshape(-1), t_vision, t_text)
    model = nn.Sequential(m)
    with vision_mask(mask), collect_stats(model) as stats:
        model(x)
    assert list(stats.layers) == ["0"]
    ls = stats.layers["0"]
    assert (ls.in_features, ls.out_features, ls.coder) == (IN, OUT, coder)
    total_spikes = 0
    for name, sel in (("vision", mask.reshape(-1)), ("text", ~mask.reshape(-1))):
        e = expected(m, x, mask, t_tok, sel)
        c = ls.per_modality[name]
        assert c.tokens == e["tokens"]
        assert c.spikes == e["spikes"] > 0
        assert c.acs == e["spikes"] * OUT
        assert c.macs == e["tokens"] * IN * OUT
        assert c.neuron_steps == e["steps"] * IN
        assert c.firing_rate == pytest.approx(e["spikes"] / (e["steps"] * IN))
        assert c.steps_per_token == e["steps"] and c.mean_timesteps == pytest.approx(e["steps"] / e["tokens"])
        # spikes per step, aligned on the last (least significant) step
        k = len(e["per_step"])
        assert c.spikes_per_step[-k:] == e["per_step"] and not any(c.spikes_per_step[:-k])
        total_spikes += c.spikes
    tot = stats.totals()
    assert tot.spikes == total_spikes and tot.tokens == 12 and tot.macs == 12 * IN * OUT
    assert tot.acs == total_spikes * OUT
    assert tot.neuron_steps == int(t_tok.sum()) * IN
    assert stats.totals("vision").spikes == ls.per_modality["vision"].spikes


def test_stats_are_the_same_in_every_mode_and_accumulate():
    m = SpikeLinear.from_linear(nn.Linear(IN, OUT), coder="tc-lif", t_text=3, t_vision=4)
    x = torch.randn(5, IN, generator=torch.Generator().manual_seed(5))
    mask = torch.tensor([True, False, True, False, False])
    dicts = []
    for mode in ("faithful", "fused", "fakequant"):
        m.mode = mode
        with vision_mask(mask), collect_stats(m) as st:
            m(x)
        dicts.append(st.to_dict())
    assert dicts[0] == dicts[1] == dicts[2]
    with vision_mask(mask), collect_stats(m) as st:
        m(x)
        m(x)
    one = RunStats()
    with vision_mask(mask), collect_stats(m) as single:
        m(x)
    one.merge(single).merge(single)
    assert st.to_dict() == one.to_dict()
    assert st.totals().spikes == 2 * single.totals().spikes


def test_no_stats_outside_the_block_and_text_without_a_mask():
    m = SpikeLinear.from_linear(nn.Linear(IN, OUT), coder="if", t_text=5)
    x = torch.randn(4, IN)
    with collect_stats(m) as st:
        m(x)
    m(x)  # after the block: not counted
    assert st.totals().tokens == 4
    assert st.layers[next(iter(st.layers))].per_modality["vision"].tokens == 0
    e = expected(m, x, torch.zeros(4, dtype=torch.bool), torch.full((4,), 5), torch.ones(4, dtype=torch.bool))
    assert st.totals("text").spikes == e["spikes"]


def test_vision_region_counts_everything_as_vision():
    m = SpikeLinear.from_linear(nn.Linear(IN, OUT), coder="tc-lif", t_text=2, t_vision=4, region="vision")
    x = torch.randn(3, 2, IN)
    with collect_stats(m) as st:
        m(x)
    c = st.totals("vision")
    assert c.tokens == 6 and st.totals("text").tokens == 0
    assert c.neuron_steps == 6 * 4 * IN
    e = expected(m, x, torch.ones(6, dtype=torch.bool), torch.full((6,), 4), torch.ones(6, dtype=torch.bool))
    assert c.spikes == e["spikes"]


def test_per_step_counts_align_on_the_last_step_across_runs():
    """A text-only batch runs 3 steps, a mixed one 5: their text spikes add up step by step from the end."""
    m = SpikeLinear.from_linear(nn.Linear(IN, OUT), coder="tc-lif", t_text=3, t_vision=5)
    g = torch.Generator().manual_seed(9)
    x1, x2 = torch.randn(4, IN, generator=g), torch.randn(4, IN, generator=g)
    mask2 = torch.tensor([True, False, False, True])
    with collect_stats(m) as a:
        m(x1)
    with vision_mask(mask2), collect_stats(m) as b:
        m(x2)
    with collect_stats(m) as both:
        m(x1)
        with vision_mask(mask2):
            m(x2)
    ta, tb = a.totals("text").spikes_per_step, b.totals("text").spikes_per_step
    assert len(ta) == 3 and len(tb) == 5 and tb[:2] == [0, 0]
    assert both.totals("text").spikes_per_step == [tb[0], tb[1], tb[2] + ta[0], tb[3] + ta[1], tb[4] + ta[2]]
    assert both.to_dict() == RunStats().merge(a).merge(b).to_dict()
