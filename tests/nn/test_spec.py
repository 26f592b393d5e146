"""A SpikeLinear is built from one frozen spec; rebuilding it replaces spec fields and keeps everything else."""
from __future__ import annotations

import dataclasses

import pytest
import torch

import spikemllm
from spikemllm import QuantSpec, SpikeConfig
from spikemllm.errors import ConfigError
from spikemllm.nn import SpikeLinear, SpikeLinearSpec, set_mode
from spikemllm.spikify.specs import layer_spec


def _layer(spec: SpikeLinearSpec) -> SpikeLinear:
    m = SpikeLinear(32, 8, spec)
    m.load_quantized(spikemllm.quantize(torch.randn(8, 32, generator=torch.Generator().manual_seed(0)),
                                        m.weight_spec), torch.randn(8))
    return m


def test_spec_and_keyword_construction_agree():
    spec = SpikeLinearSpec(coder="if", t_text=5, t_vision=3, act_group_size=16, act_clip=0.9)
    a = _layer(spec)
    b = SpikeLinear(32, 8, coder="if", t_text=5, t_vision=3, act_group_size=16, act_clip=0.9)
    b.load_state_dict(a.state_dict())
    assert b.spec == spec and a.spec is spec
    x = torch.randn(4, 32)
    assert torch.equal(a(x), b(x))


def test_respec_replaces_only_what_is_asked():
    m = _layer(SpikeLinearSpec(t_text=4, t_vision=3, act_group_size=16, weight_spec=QuantSpec(3, True, "per-channel")))
    new = m.respec(m.spec.with_timesteps({"text": 2}))
    assert new.spec == dataclasses.replace(m.spec, t_text=2)
    assert torch.equal(new.qweight, m.qweight) and new.act_group_size == 16 and new.weight_spec.bits == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.spec.t_text = 1


def test_set_mode_replaces_the_spec():
    m = _layer(SpikeLinearSpec())
    before = m.spec
    set_mode(m, "faithful")
    assert m.spec == dataclasses.replace(before, mode="faithful") and before.mode == "fused"


@pytest.mark.parametrize("kw,match", [
    (dict(region="projector"), "region"), (dict(t_text=0), "t_text"), (dict(coder="lif"), "coder"),
    (dict(coder="tc-lif", signed=False), "signed"), (dict(mode="fast"), "mode"),
    (dict(weight_spec=QuantSpec(4, False, "per-channel")), "symmetric"),
])
def test_bad_specs_are_config_errors(kw, match):
    with pytest.raises(ConfigError, match=match):
        SpikeLinearSpec(**kw)


def test_layer_spec_is_the_one_map_from_config_to_layers():
    model, _ = spikemllm.tiny_model("qwen2_vl")
    mm = spikemllm.describe(model)
    cfg = SpikeConfig(timesteps={"vision": 3, "text": 4}, layer_timesteps={"lm.1": 2}, act_group_size=16)
    spikemllm.convert(model, cfg, progress=False)
    for name, m in model.named_modules():
        if isinstance(m, SpikeLinear):
            assert m.spec == layer_spec(cfg, mm, name)
    assert model.get_submodule("model.language_model.layers.1.mlp.up_proj").spec.timesteps == {"vision": 2, "text": 2}
    assert model.get_submodule("model.visual.blocks.0.attn.qkv").spec.region == "vision"
    assert model.spikemllm.config == cfg and model.spike_config is cfg
