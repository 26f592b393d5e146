"""timesteps_override computes exactly what convert() with the same layer_timesteps computes."""
from __future__ import annotations

import copy

import pytest
import torch

import spikemllm
from spikemllm.msts import timesteps_override
from spikemllm.nn import SpikeLinear


@pytest.mark.parametrize("attention,act_group_size", [("dense", None), ("spike", None), ("dense", 16)])
def test_override_equals_fresh_conversion_bit_for_bit(attention, act_group_size):
    # act_group_size: a rebuilt layer once dropped it and scored another model than convert() builds
    fp, inputs = spikemllm.tiny_model("qwen2_vl", seed=1)
    base = spikemllm.SpikeConfig(timesteps={"vision": 3, "text": 4}, attention=attention,
                                 act_group_size=act_group_size)
    changes = {"lm.0": {"vision": 2, "text": 5}, "vision.1": {"vision": 4, "text": 4}, "rest": {"vision": 2, "text": 2}}
    target = base.replace(timesteps={"vision": 2, "text": 2},
                          layer_timesteps={"lm.0": changes["lm.0"], "vision.1": changes["vision.1"],
                                           "lm.1": {"vision": 3, "text": 4}, "vision.0": {"vision": 3, "text": 4}})
    spk = spikemllm.convert(copy.deepcopy(fp), base, progress=False)
    ref = spikemllm.convert(copy.deepcopy(fp), target, progress=False)
    mm = spikemllm.describe(spk)
    with torch.no_grad():
        before = spk(**inputs).logits
        with timesteps_override(spk, mm, changes):
            got = spk(**inputs).logits
            inner = spk.get_submodule("model.language_model.layers.0.mlp.up_proj")
            assert (inner.t_vision, inner.t_text, inner.act_group_size) == (2, 5, act_group_size)
        after = spk(**inputs).logits
        want = ref(**inputs).logits
    assert torch.equal(got, want)
    assert not torch.equal(got, before)
    assert torch.equal(after, before)  # restored


def test_partial_and_nested_overrides_restore_in_order():
    fp, inputs = spikemllm.tiny_model("llava")
    spk = spikemllm.convert(fp, spikemllm.SpikeConfig(), progress=False)
    mm = spikemllm.describe(spk)
    name = "model.language_model.layers.1.self_attn.q_proj"
    orig = spk.get_submodule(name)
    with timesteps_override(spk, mm, {"lm.1": {"text": 2}}):
        assert (spk.get_submodule(name).t_vision, spk.get_submodule(name).t_text) == (3, 2)
        with timesteps_override(spk, mm, {"lm.1": {"vision": 1}}):
            assert (spk.get_submodule(name).t_vision, spk.get_submodule(name).t_text) == (1, 2)
        assert spk.get_submodule(name).t_vision == 3
    assert spk.get_submodule(name) is orig
    assert isinstance(orig, SpikeLinear)


def test_override_rejects_unknown_groups_and_keys():
    fp, _ = spikemllm.tiny_model("llava")
    spk = spikemllm.convert(fp, spikemllm.SpikeConfig(), progress=False)
    mm = spikemllm.describe(spk)
    with pytest.raises(ValueError, match="lm.9"):
        with timesteps_override(spk, mm, {"lm.9": {"text": 2}}):
            pass
    with pytest.raises(ValueError, match="allowed: vision, text"):
        with timesteps_override(spk, mm, {"lm.0": {"audio": 2}}):
            pass
