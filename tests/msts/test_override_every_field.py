"""For every SpikeConfig field: running a converted model under a timestep override computes exactly what a fresh
conversion with the same ``layer_timesteps`` computes. A rebuilt layer is ``dataclasses.replace`` of its spec, so
no setting can be dropped on the way (one was: ``act_group_size``, and MED scored another model than the one that
shipped). A field added to SpikeConfig without a case here fails ``test_every_field_has_a_case``."""
from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

import spikemllm
from spikemllm import SpikeConfig
from spikemllm.msts import timesteps_override

BASE = {"timesteps": {"vision": 3, "text": 4}}
# field -> SpikeConfig keyword arguments that set it away from its default (on top of BASE)
CASES: dict[str, dict] = {
    "coder": {"coder": "if"},
    "timesteps": {"timesteps": {"vision": 2, "text": 5}},
    "layer_timesteps": {"layer_timesteps": {"lm.1": {"vision": 2, "text": 2}}},
    "weight_bits": {"weight_bits": 3},
    "weight_granularity": {"weight_granularity": "per-group", "group_size": 32},
    "group_size": {"weight_granularity": "per-group", "group_size": 16},
    "method": {"method": "rotation"},
    "method_options": {"method": "rotation", "method_options": {"rotation": {"seed": 3, "offline": False}}},
    "targets": {"targets": ("re:.*mlp.*",)},
    "ignore": {"ignore": ("lm_head", "re:.*k_proj")},
    "attention": {"attention": "spike"},
    "act_clip": {"act_clip": 0.9},
    "act_group_size": {"act_group_size": 16},
    "signed": {"coder": "if", "signed": False},
    "mode": {"mode": "faithful"},
    "version": {},  # one version exists; the base case covers it
}
CHANGE = {"lm.0": {"vision": 2, "text": 3}}


def test_every_field_has_a_case():
    assert set(CASES) == {f.name for f in dataclasses.fields(SpikeConfig)}


@pytest.mark.parametrize("field", sorted(CASES))
def test_override_equals_a_fresh_conversion(field):
    fp, inputs = spikemllm.tiny_model("qwen2_vl", seed=2)
    cfg = SpikeConfig(**{**BASE, **CASES[field]})
    spk = spikemllm.convert(copy.deepcopy(fp), cfg, progress=False)
    ref = spikemllm.convert(copy.deepcopy(fp), cfg.replace(layer_timesteps={**cfg.layer_timesteps, **CHANGE}),
                            progress=False)
    mm = spikemllm.describe(spk)
    with torch.no_grad():
        before = spk(**inputs).logits
        with timesteps_override(spk, mm, CHANGE):
            got = spk(**inputs).logits
        want = ref(**inputs).logits
    assert torch.equal(got, want)
    assert not torch.equal(got, before)
