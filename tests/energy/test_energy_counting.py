"""Per-layer MAC/AC counts of a real two-layer spiking run equal hand-counted values, and pricing is by hand."""
import pytest
import torch
from torch import nn

from spikemllm.energy.counting import count_linear, counts_from_stats, counts_from_workload
from spikemllm.energy.report import EnergyOptions, energy_report
from spikemllm.nn import SpikeLinear, collect_stats, vision_mask


def _two_layer_model() -> nn.Module:
    l1 = nn.Linear(4, 3, bias=False)
    l2 = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        # layer 1 copies inputs 0, 1 and 3 (a single 1 per row quantizes exactly: code 7, scale 1/7)
        l1.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1.0]]))
        l2.weight.copy_(torch.tensor([[0.5, -0.25, 1.0], [-1.0, 0.75, 0.1]]))
    return nn.Sequential(SpikeLinear.from_linear(l1, coder="tc-lif", t_text=3, t_vision=2),
                         SpikeLinear.from_linear(l2, coder="tc-lif", t_text=3, t_vision=2))


def _run():
    model = _two_layer_model()
    c = 0.37
    # token 0 is vision (T=2, codes up to 3), tokens 1-2 are text (T=3, codes up to 7)
    x = torch.tensor([[[3.0, -1, 0, 2], [7, 0, -3, 1], [0, 0, 0, 7]]]) * c
    with collect_stats(model) as stats, vision_mask(torch.tensor([[True, False, False]])):
        model(x)
    return counts_from_stats(stats)


def test_per_layer_macs_acs_match_hand_counts():
    l1, l2 = _run()
    # TC-LIF spikes = popcount(|code|). Layer 1 codes: vision [3,-1,0,2] -> 2+1+0+1 = 4 spikes;
    # text [7,0,-3,1] -> 3+0+2+1 = 6 and [0,0,0,7] -> 3: 9 spikes.
    v, t = l1.per_modality["vision"], l1.per_modality["text"]
    assert (v.tokens, v.neuron_steps, v.spikes, v.macs, v.acs) == (1, 1 * 4 * 2, 4, 1 * 4 * 3, 4 * 3)
    assert (t.tokens, t.neuron_steps, t.spikes, t.macs, t.acs) == (2, 2 * 4 * 3, 9, 2 * 4 * 3, 9 * 3)
    assert t.firing_rate == pytest.approx(9 / 24)
    # layer 2 sees inputs 0, 1, 3 of layer 1: vision [3,-1,2] -> 2+1+1 = 4; text [7,0,1] -> 4 and [0,0,7] -> 3
    v, t = l2.per_modality["vision"], l2.per_modality["text"]
    assert (v.neuron_steps, v.spikes, v.macs, v.acs) == (1 * 3 * 2, 4, 1 * 3 * 2, 4 * 2)
    assert (t.neuron_steps, t.spikes, t.macs, t.acs) == (2 * 3 * 3, 7, 2 * 3 * 2, 7 * 2)


def test_real_run_priced_by_hand_at_45nm():
    counts = _run()
    rep = energy_report(counts, EnergyOptions(table="45nm", dense_op="mac_fp16", spike_ac="ac_fp32"))
    rows = {(r.layer, r.modality): r for r in rep.rows}
    r = rows[("0", "text")]
    assert r.dense_compute == pytest.approx(24 * 1.5)  # 24 MACs x (1.1 + 0.4) pJ
    assert r.spike_compute == pytest.approx(27 * 0.9)  # 27 ACs x 0.9 pJ
    assert rep.totals["macs"] == 12 + 24 + 6 + 12 and rep.totals["acs"] == 12 + 27 + 8 + 14
    # memory, layer 0 text: weights 4x3 split by token share 2/3, FP16 = 2 B, 4-bit = 0.5 B, off-chip HBM2;
    # activations: FP16 in (4) + out (3) per token; spiking in = 4-bit codes at T=3 (level_spec: 4 bits)
    hbm, sram = 3.97 * 8, 20 / 8
    assert r.dense_memory == pytest.approx(12 * 2 * (2 / 3) * hbm + 2 * (4 + 3) * 2 * sram)
    assert r.spike_memory == pytest.approx(12 * 0.5 * (2 / 3) * hbm + (2 * 4 * 0.5 + 2 * 3 * 2) * sram)


def test_shape_counts_by_hand():
    lc = count_linear("fc", 100, 50, {"vision": (10, 3, 0.2), "text": (4, 4, 0.5)}, weight_bits=4, repeat=2)
    v, t = lc.per_modality["vision"], lc.per_modality["text"]
    assert v.macs == 10 * 100 * 50 * 2 and v.acs == pytest.approx(10 * 100 * 3 * 0.2 * 50 * 2)
    assert t.neuron_steps == 4 * 100 * 4 * 2 and t.firing_rate == pytest.approx(0.5)
    assert lc.weight_bytes() == 100 * 50 * 0.5 * 2
    with pytest.raises(ValueError):
        count_linear("bad", 4, 4, {"text": (1, 0, 0.5)})


def test_kv_projection_bytes_and_workload_counts():
    from spikemllm.hardware.workload import Workload
    from spikemllm.models.qwen2_vl import qwen2_vl_7b

    counts = counts_from_workload(Workload(qwen2_vl_7b(), output_tokens=8), "both")
    k = next(c for c in counts if c.name.startswith("lm.k_proj") and "text" in c.per_modality)
    assert k.is_kv and k.kv_bytes("text", 8) > 0
    q = next(c for c in counts if c.name.startswith("lm.q_proj"))
    assert not q.is_kv and q.kv_bytes("text", 8) == 0
    rep = energy_report(counts, EnergyOptions(table="28nm", spike_ac="int"))
    assert rep.totals["spike_compute"] < rep.totals["dense_compute"]
    assert "with memory" in rep.format(per_layer=False)


def test_real_run_of_a_tiny_converted_vlm_is_consistent_per_layer():
    pytest.importorskip("transformers")
    import spikemllm
    from spikemllm.energy.run import count_model_run
    from spikemllm.models.tiny import tiny_model

    model, inputs = tiny_model("qwen2_vl")
    counts = count_model_run(model, inputs, spikemllm.SpikeConfig(timesteps={"vision": 3, "text": 4}))
    assert counts
    for lc in counts:
        for mod, c in lc.per_modality.items():
            assert c.macs == c.tokens * lc.in_features * lc.out_features
            assert c.acs == c.spikes * lc.out_features
            assert c.neuron_steps == c.tokens * c.timesteps * lc.in_features
            assert c.timesteps == (3 if mod == "vision" else 4)
        if ".visual." in lc.name:
            assert set(lc.per_modality) == {"vision"}
    lm = [lc for lc in counts if "language_model" in lc.name]
    assert lm and all(set(lc.per_modality) == {"vision", "text"} for lc in lm)
