"""Coders own coding: a third coder registered from one file (tests/coding/toy_ternary.py) is a valid
SpikeConfig.coder, has consistent levels, and converts and runs a tiny model."""
from __future__ import annotations

import pytest
import torch

import spikemllm
from spikemllm import SpikeConfig
from spikemllm.coding import coder_names, make_coder, register_coder, unregister_coder
from spikemllm.levels import level_spec, max_timesteps

from toy_ternary import BalancedTernaryCoder  # tests/coding is on sys.path (rootdir-relative import, as pytest does)


@pytest.fixture
def toy():
    register_coder(BalancedTernaryCoder)
    yield BalancedTernaryCoder
    unregister_coder(BalancedTernaryCoder.coding)


def test_levels_follow_from_the_radix(toy):
    assert "toy-ternary" in coder_names()
    s = level_spec("toy-ternary", bits=4)   # |q| <= 7: two balanced-ternary digits carry only 4, three carry 13
    assert (s.timesteps, s.qmax, s.qmin) == (3, 7, -7)
    assert level_spec("toy-ternary", bits=3).timesteps == 2
    assert level_spec("toy-ternary", timesteps=2).qmax == 4
    assert level_spec("toy-ternary", timesteps=3).qmax == 13 and level_spec("toy-ternary", timesteps=3).bits == 5
    assert max_timesteps("toy-ternary") == toy.steps_for_bits(8)
    c = make_coder("toy-ternary", timesteps=3)
    assert c.step_weights() == [9, 3, 1]


def test_encode_decode_and_planes_agree(toy):
    c = make_coder("toy-ternary", timesteps=3)
    q = torch.arange(-13, 14)
    s = c.encode(q)
    assert set(s.unique().tolist()) <= {-1, 0, 1}
    assert torch.equal(c.decode(s), q)
    planes = torch.stack(list(c.planes(q.float(), 3, 3)))
    assert torch.equal(planes.to(torch.int8), s)
    # spike counts per step come from the trains
    counts = c.spikes_per_step(q.abs().view(1, -1), torch.tensor([3]), 3)
    assert counts[:, 0].tolist() == (c.encode(q.abs()) != 0).sum(-1).tolist()


def test_config_accepts_the_registered_coder_only_while_registered(toy):
    cfg = SpikeConfig(coder="toy-ternary", timesteps={"vision": 2, "text": 3})
    assert SpikeConfig.from_json(cfg.to_json()) == cfg
    unregister_coder("toy-ternary")
    with pytest.raises(ValueError, match="allowed values: if, tc-lif"):
        SpikeConfig(coder="toy-ternary")
    register_coder(toy)


def test_a_tiny_model_converts_and_runs_with_the_toy_coder(toy):
    model, inputs = spikemllm.tiny_model("qwen2_vl")
    spikemllm.convert(model, SpikeConfig(coder="toy-ternary", timesteps={"vision": 2, "text": 3}), progress=False)
    with torch.no_grad():
        fused = model(**inputs).logits
        spikemllm.set_mode(model, "fakequant")
        ref = model(**inputs).logits
    assert torch.isfinite(fused).all()
    assert (fused - ref).abs().max() <= 1e-3 * ref.abs().max()
    with torch.no_grad():
        spikemllm.set_mode(model, "faithful")   # radix-3 Horner steps through the coder's combine_
        faithful = model(**inputs).logits
    assert torch.equal(faithful, fused)


def test_spike_counts_of_a_layer_come_from_the_toy_trains(toy):
    from spikemllm.nn import SpikeLinear, SpikeLinearSpec, collect_stats
    lin = SpikeLinear(8, 4, SpikeLinearSpec(coder="toy-ternary", t_text=3))
    lin.load_quantized(spikemllm.quantize(torch.randn(4, 8), lin.weight_spec))
    x = torch.randn(5, 8)
    with collect_stats(lin) as st, torch.no_grad():
        lin(x)
    q = spikemllm.quantize(x, lin.act_spec, qmax=13).q.to(torch.int64)
    want = (lin.coder.encode(q) != 0).sum().item()
    assert st.totals().spikes == want and want > 0
