"""Calibration of a model offloaded to disk by accelerate gives exactly what calibration in RAM gives."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spikemllm.calibrate import calibration_stats, default_calibration, is_offloaded, read_param, transform_hooks, write_param
from spikemllm.calibrate.offload import offload_blocks_to_disk
from spikemllm.config import SpikeConfig
from spikemllm.methods import QuantContext, get_method
from spikemllm.models import describe, tiny_model

accelerate = pytest.importorskip("accelerate")


def _out(model, inputs):
    with torch.no_grad():
        return model(**inputs).logits


def _ctx(model, inputs, methods, group=False):
    mm = describe(model)
    targets = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear) and n != "lm_head"}
    cfg = SpikeConfig(method=methods, weight_granularity="per-group" if group else "per-channel", group_size=32,
                      method_options={k: v for k, v in {"gptq": {"progress": False, "act_order": group},
                                                        "smoothquant": {"progress": False}}.items()
                                      if k in ([methods] if isinstance(methods, str) else methods)})
    return QuantContext(model=model, model_map=mm, config=cfg, targets=targets,
                        calib=default_calibration(mm, n=3, example=inputs, seed=1), log=lambda s: None)


def _pair(family, tmp_path):
    ram, inputs = tiny_model(family)
    disk, _ = tiny_model(family)
    disk = offload_blocks_to_disk(disk, tmp_path)
    assert is_offloaded(disk.get_submodule(describe(disk).lm_layers)[0].self_attn.q_proj)
    return ram, disk, inputs


@pytest.mark.parametrize("family", ["qwen2", "qwen2_vl"])
def test_statistics_equal(family, tmp_path):
    ram, disk, inputs = _pair(family, tmp_path)
    a = calibration_stats(_ctx(ram, inputs, "rtn"), [n for n, m in ram.named_modules() if isinstance(m, nn.Linear)
                                                 and n != "lm_head"], ("absmax", "hessian"))
    b = calibration_stats(_ctx(disk, inputs, "rtn"), list(a), ("absmax", "hessian"))
    assert set(a) == set(b) and len(a) > 10
    for n in a:
        assert torch.equal(a[n].absmax, b[n].absmax) and torch.equal(a[n].xtx, b[n].xtx), n


@pytest.mark.parametrize("methods,group", [(["gptq"], False), (["smoothquant", "gptq"], True),
                                           (["rotation", "gptq"], False)], ids=["gptq", "sq+gptq-g32-act", "rot+gptq"])
@pytest.mark.parametrize("family", ["qwen2", "qwen2_vl"])
def test_methods_give_the_same_integers(family, methods, group, tmp_path):
    ram, disk, inputs = _pair(family, tmp_path)
    results = []
    for model in (ram, disk):
        ctx = _ctx(model, inputs, methods, group)
        for name in methods:
            get_method(name)(**ctx.options(name)).apply(ctx)
        with transform_hooks(ctx.targets, ctx.input_transforms):
            results.append((ctx.weights, _out(model, inputs)))
    (wa, ya), (wb, yb) = results
    assert set(wa) == set(wb)
    for n in wa:
        assert torch.equal(wa[n].q, wb[n].q) and torch.equal(wa[n].scale, wb[n].scale), n
    assert torch.equal(ya, yb)


def test_write_param_goes_to_the_offload_folder_not_ram(tmp_path):
    model, inputs = tiny_model("qwen2")
    y0 = _out(model, inputs)
    model = offload_blocks_to_disk(model, tmp_path)
    lin = model.model.layers[0].mlp.up_proj
    w = read_param(lin, "weight")
    write_param(lin, "weight", w * 2)
    on_disk = np.memmap(tmp_path / "model.layers.0.mlp.up_proj.weight.dat", dtype=np.float32, mode="r")
    assert torch.equal(torch.from_numpy(np.array(on_disk)).reshape(w.shape), w * 2)
    assert torch.equal(read_param(lin, "weight"), w * 2) and lin.weight.device.type == "meta"
    assert not torch.equal(_out(model, inputs), y0)
    write_param(lin, "weight", w)
    assert torch.equal(_out(model, inputs), y0)
    with pytest.raises(ValueError, match="shape"):
        write_param(lin, "weight", w[:3])
