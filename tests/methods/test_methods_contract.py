"""The contract for every method: the spiking model equals its own fake-quantized ANN (faithful == fused bit for
bit, both equal fakequant up to float rounding of the scales); composition order is validated."""
from __future__ import annotations

import pytest
import torch

from spikemllm import SpikeConfig, convert, describe, set_mode, tiny_model
from spikemllm.calibrate import default_calibration
from spikemllm.methods import registered_methods, validate_order

METHODS = [["rtn"], ["smoothquant"], ["gptq"], ["rotation"], ["rotation", "gptq"], ["smoothquant", "gptq"],
           ["smoothquant", "rotation", "gptq"]]
QUIET = {"gptq": {"progress": False}, "smoothquant": {"progress": False}}


def _out(model, inputs):
    with torch.no_grad():
        o = model(**inputs)
    return o.logits if getattr(o, "logits", None) is not None else o.last_hidden_state


@pytest.mark.parametrize("methods", METHODS, ids="+".join)
@pytest.mark.parametrize("family,timesteps", [("qwen2", 3), ("qwen2_vl", {"vision": 3, "text": 4}), ("bert", 4)])
def test_spiking_equals_fakequant(family, timesteps, methods):
    model, inputs = tiny_model(family)
    calib = default_calibration(describe(model), n=2, example=inputs)
    cfg = SpikeConfig(method=methods, timesteps=timesteps, method_options={k: v for k, v in QUIET.items() if k in methods}, weight_granularity="per-group",
                      group_size=32)
    convert(model, cfg, calib=calib, progress=False)
    set_mode(model, "fused")
    fused = _out(model, inputs)
    set_mode(model, "faithful")
    faithful = _out(model, inputs)
    set_mode(model, "fakequant")
    fq = _out(model, inputs)
    assert torch.equal(fused, faithful)
    assert torch.allclose(fused, fq, rtol=1e-4, atol=1e-5 * float(fq.abs().max()))


def test_all_methods_registered():
    assert {"rtn", "smoothquant", "gptq", "rotation"} <= set(registered_methods())


@pytest.mark.parametrize("bad,match", [
    (["gptq", "rotation"], "put transforms first"),
    (["rtn", "gptq"], "both choose weights"),
    (["rotation", "rotation"], "repeats"),
    (["quarot"], "registered: .*gptq.*rotation.*smoothquant"),
])
def test_composition_order_is_validated(bad, match):
    with pytest.raises(ValueError, match=match):
        validate_order(bad)


def test_valid_compositions():
    for good in (["rotation", "gptq"], ["smoothquant", "rotation", "gptq"], ["rotation", "smoothquant"]):
        assert [c.name for c in validate_order(good)] == good
