"""High precision stays close to FP: 8-bit IF (127 steps, signed) and TC-LIF T=7 (8-bit codes), W8, give logits
with SQNR > 30 dB against the float model, and precision orders fidelity (W4A4 is clearly worse)."""
from __future__ import annotations

import pytest

import spikemllm
from spikify_helpers import TV_TT, converted, forward, sqnr_db

HIGH = {"if-8bit": dict(coder="if", timesteps=127, weight_bits=8),
        "tclif-T7": dict(coder="tc-lif", timesteps=7, weight_bits=8)}


@pytest.mark.parametrize("setting", sorted(HIGH))
@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "llava", "internvl", "idefics3", "qwen2"])
def test_8bit_is_within_30db_of_fp(family, setting):
    model, inputs, fp = converted(family, **HIGH[setting])
    spikemllm.set_mode(model, "faithful")
    assert sqnr_db(fp, forward(model, inputs)) > 30


def test_8bit_spiking_attention_is_within_30db_of_fp():
    model, inputs, fp = converted("qwen2_vl", attention="spike", **HIGH["tclif-T7"])
    spikemllm.set_mode(model, "faithful")
    assert sqnr_db(fp, forward(model, inputs)) > 30


def test_precision_orders_fidelity():
    sq = {}
    for name, cfg in {"w4a4": dict(coder="tc-lif", timesteps=TV_TT, weight_bits=4),
                      "w8a5": dict(coder="tc-lif", timesteps=4, weight_bits=8),
                      "w8a8": HIGH["tclif-T7"]}.items():
        model, inputs, fp = converted("llava", **cfg)
        sq[name] = sqnr_db(fp, forward(model, inputs))
    assert sq["w4a4"] + 5 < sq["w8a5"] < sq["w8a8"]
