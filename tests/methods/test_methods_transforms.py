"""SmoothQuant and rotation change the float model without changing what it computes (to 1e-5)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from spikemllm.calibrate import default_calibration, transform_hooks
from spikemllm.config import SpikeConfig
from spikemllm.methods import QuantContext, get_method
from spikemllm.methods.smoothquant import smoothing_factors
from spikemllm.models import describe, tiny_model



def model_output(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        o = model(**inputs)
    return o.logits if getattr(o, "logits", None) is not None else o.last_hidden_state

FAMILIES = ["qwen2", "bert", "qwen2_vl", "qwen2_5_vl", "llava", "internvl", "idefics3"]


def _ctx(family: str, methods: list[str], seed: int = 0):
    model, inputs = tiny_model(family, seed=seed)
    mm = describe(model)
    targets = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear) and n != mm.lm_head}
    opts = {m: {"progress": False} for m in ("smoothquant", "gptq") if m in methods}
    logs: list[str] = []
    ctx = QuantContext(model=model, model_map=mm, config=SpikeConfig(method=methods, method_options=opts),
                       targets=targets, calib=default_calibration(mm, n=2, example=inputs), log=logs.append)
    return ctx, inputs, logs


def _run(ctx, methods):
    done = []
    for name in methods:
        m = get_method(name)(**ctx.options(name))
        m.apply(ctx)
        done.append(m)
    return done


def _fp_output(ctx, inputs):
    with transform_hooks(ctx.targets, ctx.input_transforms):
        return model_output(ctx.model, inputs)


@pytest.mark.parametrize("methods", [["smoothquant"], ["rotation"], ["smoothquant", "rotation"],
                                     ["rotation", "smoothquant"]], ids="+".join)
@pytest.mark.parametrize("family", FAMILIES)
def test_float_output_unchanged(family, methods):
    ctx, inputs, _ = _ctx(family, methods)
    y0 = model_output(ctx.model, inputs)
    _run(ctx, methods)
    y1 = _fp_output(ctx, inputs)
    assert (y1 - y0).abs().max() <= 1e-5 * y0.abs().max()


def test_smoothing_factors_formula():
    a, w = torch.tensor([4.0, 1.0, 0.0, 9.0]), torch.tensor([1.0, 4.0, 2.0, 0.0])
    s = smoothing_factors(a, w, 0.5)
    assert torch.allclose(s, torch.tensor([2.0, 0.5, 1.0, 1.0]))
    assert torch.allclose(smoothing_factors(a[:2], w[:2], 1.0), a[:2])
    with pytest.raises(ValueError, match="alpha"):
        smoothing_factors(a, w, 1.5)


def test_smoothquant_places_factors_where_exact():
    ctx, _, _ = _ctx("qwen2", ["smoothquant"])
    (sq,) = _run(ctx, ["smoothquant"])
    p = sq.placed
    assert p["model.layers.0.self_attn.q_proj"].endswith("input_layernorm")
    assert p["model.layers.0.mlp.gate_proj"].endswith("post_attention_layernorm")
    assert p["model.layers.0.mlp.down_proj"].endswith("mlp.up_proj")
    assert p["model.layers.0.self_attn.o_proj"] == "online"       # GQA: v_proj is shared by two heads
    assert "model.layers.0.self_attn.o_proj" in ctx.input_transforms
    assert "model.layers.0.self_attn.q_proj" not in ctx.input_transforms


def test_smoothquant_refuses_post_ln_residual_norms():
    """BERT's LayerNorm output is also the residual: absorbing there would change the model, so it goes online."""
    ctx, _, _ = _ctx("bert", ["smoothquant"])
    (sq,) = _run(ctx, ["smoothquant"])
    assert sq.placed["encoder.layer.1.attention.self.query"] == "online"
    assert sq.placed["encoder.layer.1.intermediate.dense"] == "online"
    assert sq.placed["encoder.layer.1.attention.output.dense"].endswith("attention.self.value")


def test_smoothquant_flattens_activation_outliers():
    ctx, inputs, _ = _ctx("bert", ["smoothquant"])
    lin = ctx.targets["encoder.layer.0.intermediate.dense"]
    seen = {}
    h = lin.register_forward_pre_hook(lambda m, a: seen.__setitem__("x", a[0]))
    model_output(ctx.model, inputs)
    with torch.no_grad():
        ctx.model.embeddings.LayerNorm.weight[3] = 40.0           # plant an outlier channel
    model_output(ctx.model, inputs)
    before = seen["x"].abs().amax((0, 1))
    _run(ctx, ["smoothquant"])
    _fp_output(ctx, inputs)
    after = seen["x"].abs().amax((0, 1))
    h.remove()
    assert after.max() / after.median() < before.max() / before.median()


def test_rotation_offline_for_rmsnorm_decoders():
    ctx, _, logs = _ctx("qwen2", ["rotation"])
    (rot,) = _run(ctx, ["rotation"])
    assert rot.offline_applied and not logs
    assert sorted(n.split(".", 3)[-1] for n in ctx.input_transforms) == ["mlp.down_proj", "mlp.down_proj",
                                                                        "self_attn.o_proj", "self_attn.o_proj"]
    assert torch.equal(ctx.model.model.norm.weight, torch.ones(64))


@pytest.mark.parametrize("family", ["qwen2_vl", "llava", "idefics3"])
def test_rotation_offline_in_vlms_rotates_the_projector_output(family):
    ctx, _, logs = _ctx(family, ["rotation"])
    (rot,) = _run(ctx, ["rotation"])
    assert rot.offline_applied and not logs
    vision = [n for n in ctx.targets if ctx.model_map.region_of(n) == "vision"]
    assert vision and all(n in ctx.input_transforms for n in vision)


def test_rotation_generic_online_for_encoders_and_untied_head():
    ctx, inputs, logs = _ctx("bert", ["rotation"])
    (rot,) = _run(ctx, ["rotation"])
    assert not rot.offline_applied and any("online" in s for s in logs)
    assert set(ctx.input_transforms) == set(ctx.targets)


def test_rotation_unties_tied_embeddings():
    from transformers import Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True)
    model = Qwen2ForCausalLM._from_config(cfg, attn_implementation="eager").eval()
    assert model.lm_head.weight is model.model.embed_tokens.weight
    inputs = {"input_ids": torch.randint(1, 90, (1, 10))}
    y0 = model_output(model, inputs)
    mm = describe(model)
    targets = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear) and n != "lm_head"}
    ctx = QuantContext(model=model, model_map=mm, config=SpikeConfig(method="rotation"), targets=targets)
    _run(ctx, ["rotation"])
    assert model.lm_head.weight is not model.model.embed_tokens.weight
    assert (_fp_output(ctx, inputs) - y0).abs().max() <= 1e-5 * y0.abs().max()


def test_unknown_options_are_refused():
    ctx, _, _ = _ctx("qwen2", ["rotation"])
    for name in ("rotation", "smoothquant", "gptq"):
        with pytest.raises(ValueError, match="allowed"):
            get_method(name)(bogus=1).apply(ctx)
