"""convert() on a model whose blocks accelerate offloaded to disk gives the spiking model that RAM gives."""
from __future__ import annotations

import pytest
import torch

import spikemllm
from spikemllm.models import describe, tiny_model

accelerate = pytest.importorskip("accelerate")


def _blocks_to_disk(model, folder):
    mm = describe(model)
    dm = {"": "cpu"}
    for prefix in (mm.lm_layers, mm.vision_layers):
        if prefix:
            dm.update({f"{prefix}.{i}": "disk" for i in range(len(model.get_submodule(prefix)))})
    return accelerate.dispatch_model(model, device_map=dm, offload_dir=str(folder))


@pytest.mark.parametrize("family,method", [("qwen2", "rtn"), ("qwen2_vl", "rtn"), ("qwen2", ["rotation", "gptq"])])
def test_offloaded_convert_equals_ram(family, method, tmp_path):
    ram, inputs = tiny_model(family)
    disk, _ = tiny_model(family)
    disk = _blocks_to_disk(disk, tmp_path)
    cfg = spikemllm.SpikeConfig(method=method, timesteps={"vision": 3, "text": 4})
    calib = [inputs] if method != "rtn" else None
    spikemllm.convert(ram, cfg, calib=calib, progress=False)
    spikemllm.convert(disk, cfg, calib=calib, progress=False)
    with torch.no_grad():
        a = ram(**inputs).logits
        b = disk(**inputs).logits
    assert torch.equal(a, b)
