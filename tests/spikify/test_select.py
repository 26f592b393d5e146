"""Choosing what to spikify (targets / ignore, regex or dotted suffix) and refusing configs that do not fit."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import spikemllm
from spikemllm.nn import SpikeLinear
from spikemllm.spikify import matches


def _spiking(model):
    return {n for n, m in model.named_modules() if isinstance(m, SpikeLinear)}


def test_matches_exact_suffix_and_regex():
    assert matches("model.layers.0.mlp.down_proj", "down_proj")
    assert matches("model.layers.0.mlp.down_proj", "mlp.down_proj")
    assert not matches("model.layers.0.mlp.down_proj", "own_proj")  # suffixes are whole dotted components
    assert matches("lm_head", "lm_head")
    assert matches("model.visual.blocks.1.attn.qkv", r"re:visual\.blocks\.\d+\.attn")
    assert not matches("model.language_model.layers.0.self_attn.q_proj", r"re:^model\.visual")


def test_targets_and_ignore():
    model, inputs = spikemllm.tiny_model("qwen2_vl")
    cfg = spikemllm.SpikeConfig(targets=("q_proj", r"re:mlp\.(gate|up)_proj$"), ignore=("lm_head", "re:layers\\.1\\."))
    spikemllm.convert(model, cfg, progress=False)
    assert _spiking(model) == {"model.language_model.layers.0.self_attn.q_proj",
                               "model.language_model.layers.0.mlp.gate_proj",
                               "model.language_model.layers.0.mlp.up_proj"}
    assert type(model.model.language_model.layers[1].self_attn.q_proj) is nn.Linear
    with torch.no_grad():
        assert torch.isfinite(model(**inputs).logits).all()


def test_ignore_the_vision_tower_keeps_it_float():
    model, inputs = spikemllm.tiny_model("llava")
    spikemllm.convert(model, spikemllm.SpikeConfig(ignore=("lm_head", "re:^model\\.vision_tower")), progress=False)
    names = _spiking(model)
    assert names and not any(n.startswith("model.vision_tower") for n in names)
    assert any(n.startswith("model.multi_modal_projector") for n in names)


def test_lm_head_can_be_targeted_when_not_ignored():
    model, _ = spikemllm.tiny_model("qwen2")
    spikemllm.convert(model, spikemllm.SpikeConfig(targets=("lm_head",), ignore=()), progress=False)
    assert _spiking(model) == {"lm_head"}


@pytest.mark.parametrize("cfg,match", [
    (dict(targets=("no_such_layer",)), r"targets=\['no_such_layer'\] matches no nn.Linear"),
    (dict(layer_timesteps={"lm.2": 3}), r"'lm.2' but this qwen2-vl model has 2 lm layers; allowed keys: lm.0 .. lm.1"),
    (dict(layer_timesteps={"vision.5": 3}), r"'vision.5' .* 2 vision layers"),
    (dict(method="no_such_method"), r"quantization method 'no_such_method' is unknown; registered: .*rtn"),
])
def test_config_that_does_not_fit_is_refused_and_the_model_is_untouched(cfg, match):
    model, inputs = spikemllm.tiny_model("qwen2_vl")
    with torch.no_grad():
        before = model(**inputs).logits
    with pytest.raises(ValueError, match=match) as e:
        spikemllm.convert(model, spikemllm.SpikeConfig(**cfg), progress=False)
    assert "\n" not in str(e.value)
    assert not _spiking(model) and getattr(model, "spike_config", None) is None
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, before)


def test_vision_override_on_a_text_only_model_says_there_are_no_vision_layers():
    model, _ = spikemllm.tiny_model("qwen2")
    with pytest.raises(ValueError, match=r"'vision.0' but this generic model has no vision layers; allowed keys: lm.0"):
        spikemllm.convert(model, spikemllm.SpikeConfig(layer_timesteps={"vision.0": 3}), progress=False)


def test_converting_twice_is_refused():
    model, _ = spikemllm.tiny_model("qwen2")
    spikemllm.convert(model, spikemllm.SpikeConfig(), progress=False)
    with pytest.raises(ValueError, match="already converted"):
        spikemllm.convert(model, spikemllm.SpikeConfig(), progress=False)


def test_progress_bar_and_silence(capsys):
    model, _ = spikemllm.tiny_model("qwen2")
    spikemllm.convert(model, spikemllm.SpikeConfig(), progress=True)
    assert "spikify" in capsys.readouterr().err
    model, _ = spikemllm.tiny_model("qwen2")
    spikemllm.convert(model, spikemllm.SpikeConfig(), progress=False)
    assert capsys.readouterr().err == ""
