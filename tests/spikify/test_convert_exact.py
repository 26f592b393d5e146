"""The spiking contract on whole models: for each of the five VLM families, on an image+text input, with dense
and spiking attention, IF and TC-LIF coders, the converted model's faithful logits (T steps of spike-gated
accumulation) equal its fused logits (one integer matmul) bit for bit, and both equal the fake-quantized
ANN (dequantized operands, float matmuls) up to float rounding.

Why the model-level fakequant comparison uses a tolerance: fakequant rounds its float products differently, and
one activation code that sits on an exact .5 tie can round the other way. With spiking attention this is common,
not rare: the attention output is an integer sum times one scale per row, so the next layer's ``x / s`` lands
on exact halves. Such a flip changes one 4-bit code and moves the logits visibly. So the model-level check is a
cosine/relative tolerance, and the tight check is layer-local: every SpikeLinear and every spiking-attention call,
given the *same* input, returns fakequant's result to float rounding (and faithful == fused exactly).
"""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

import spikemllm
from spikemllm.models.tiny import VLM_FAMILIES
from spikemllm.nn import SpikeLinear
from spikify_helpers import TV_TT, converted, cosine, forward, run_modes

# IF with 5/6 steps (codes up to 5/6) and TC-LIF with 3/4 steps (codes up to 7/15): distinct integer ranges.
CODERS = {"if": {"coder": "if", "timesteps": {"vision": 5, "text": 6}}, "tc-lif": {"coder": "tc-lif", "timesteps": TV_TT}}


@pytest.mark.parametrize("attention", ["dense", "spike"])
@pytest.mark.parametrize("coder", sorted(CODERS))
@pytest.mark.parametrize("family", VLM_FAMILIES)
def test_faithful_equals_fused_and_close_to_fakequant(family, coder, attention):
    model, inputs, fp = converted(family, attention=attention, **CODERS[coder])
    out = run_modes(model, inputs)
    assert torch.equal(out["faithful"], out["fused"]), "the spiking model must compute the quantized model exactly"
    # Close to the ANN reference (see the module docstring for why this is a tolerance).
    scale = float(out["fakequant"].abs().max())
    if attention == "dense":  # no lattice-valued activations feed a quantizer: float rounding only
        torch.testing.assert_close(out["fused"], out["fakequant"], rtol=0, atol=1e-5 * scale)
    else:  # tie flips compound in a random tiny model; they stay well below the quantization error itself
        assert cosine(out["fused"], out["fakequant"]) > max(0.95, cosine(out["fused"], fp))
        assert cosine(out["fakequant"], fp) > 0.8
    # Non-vacuous: the model really was quantized (4-5 bit activations are far from FP).
    assert not torch.allclose(out["fused"], fp, atol=1e-3)
    assert cosine(out["fused"], fp) > 0.8


@pytest.mark.parametrize("family", VLM_FAMILIES)
def test_every_linear_of_vision_projector_and_lm_is_spiking(family):
    model, inputs = spikemllm.tiny_model(family)
    mm = spikemllm.describe(model)
    expected = {n for n, m in model.named_modules() if type(m) is nn.Linear and mm.region_of(n) is not None}
    spikemllm.convert(model, spikemllm.SpikeConfig(), progress=False)
    spiking = {n for n, m in model.named_modules() if isinstance(m, SpikeLinear)}
    left = {n for n, m in model.named_modules() if type(m) is nn.Linear}
    assert spiking == expected
    assert {mm.region_of(n) for n in spiking} == {"vision", "projector", "lm"}
    assert left == {"lm_head"}  # ignored by default
    assert all(model.get_submodule(n).region == "vision" for n in spiking if mm.region_of(n) != "lm")


def test_if_and_tclif_with_equal_ranges_compute_identical_logits():
    """IF with 7/15 steps and TC-LIF with 3/4 steps carry the same integer codes (|q| <= 7 / 15) as different
    spike trains (rate vs bit-planes, plain sum vs Horner): their faithful outputs must agree bit for bit."""
    outs = {}
    for name, t in (("if", {"vision": 7, "text": 15}), ("tc-lif", TV_TT)):
        model, inputs, _ = converted("llava", coder=name, timesteps=t, attention="spike")
        spikemllm.set_mode(model, "faithful")
        outs[name] = forward(model, inputs)
    assert torch.equal(outs["if"], outs["tc-lif"])


@pytest.mark.parametrize("family,coder", [("qwen2_vl", "tc-lif"), ("llava", "tc-lif"), ("llava", "if")])
def test_layer_local_fakequant_is_float_rounding_only(family, coder, attention_spy):
    """Same input, same modality mask: every SpikeLinear (fused) equals fakequant to float rounding, every
    spiking-attention call (fused) equals fakequant to float rounding and equals faithful exactly.
    (llava/if is the case whose model-level logits drift most through tie flips.)"""
    model, inputs, _ = converted(family, attention="spike", **CODERS[coder])
    lin_checked, attn_checked = [], []

    def check_linear(mod, args, out):
        fq = mod.mode
        try:
            mod.mode = "fakequant"
            ref = mod.forward(args[0])
            mod.mode = "faithful"
            faithful = mod.forward(args[0])
        finally:
            mod.mode = fq
        assert torch.equal(faithful, out)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))
        lin_checked.append(mod)

    def check_attention(orig, module, q, k, v, mask, **kw):
        spec = module._spike_attn
        res = {}
        for mode in ("fused", "faithful", "fakequant"):
            module._spike_attn = dataclasses.replace(spec, mode=mode)  # specs are frozen
            try:
                res[mode] = orig(module, q, k, v, mask, **kw)[0]
            finally:
                module._spike_attn = spec
        assert torch.equal(res["fused"], res["faithful"])
        torch.testing.assert_close(res["fused"], res["fakequant"], rtol=1e-5,
                                   atol=1e-5 * float(res["fakequant"].abs().max()))
        attn_checked.append(module)

    hooks = [m.register_forward_hook(check_linear) for m in model.modules() if isinstance(m, SpikeLinear)]
    attention_spy(check_attention)
    forward(model, inputs)
    for h in hooks:
        h.remove()
    assert len({id(m) for m in lin_checked}) == len(hooks)
    tagged = [m for m in model.modules() if hasattr(m, "_spike_attn")]
    assert {id(m) for m in attn_checked} == {id(m) for m in tagged}  # every converted attention ran spiking


@pytest.mark.parametrize("family", VLM_FAMILIES)
def test_spike_attention_runs_in_every_tagged_module_and_changes_the_result(family, attention_spy):
    model, inputs, _ = converted(family, attention="spike")
    calls = attention_spy()
    spiking = forward(model, inputs)
    tagged = {id(m) for m in model.modules() if hasattr(m, "_spike_attn")}
    regions = {m._spike_attn.region for m in model.modules() if hasattr(m, "_spike_attn")}
    assert regions == {"vision", "lm"}
    assert {id(c[0]) for c in calls} == tagged
    dense, inputs2, _ = converted(family, attention="dense")
    assert not torch.equal(forward(dense, inputs2), spiking)  # Q, K, V and P really are quantized


@pytest.mark.parametrize("family", ["qwen2", "bert"])
def test_text_only_models_go_through_the_generic_path(family):
    model, inputs, fp = converted(family, attention="spike", coder="tc-lif", timesteps=4)
    out = run_modes(model, inputs)
    assert torch.equal(out["faithful"], out["fused"])
    assert cosine(out["fused"], out["fakequant"]) > 0.998
    assert spikemllm.describe(model).family == "generic"
