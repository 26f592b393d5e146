"""convert() on a model whose blocks accelerate offloaded to disk gives the spiking model that RAM gives."""
from __future__ import annotations

import pytest
import torch

import spikemllm
from spikemllm.calibrate.offload import offload_blocks_to_disk
from spikemllm.models import tiny_model

accelerate = pytest.importorskip("accelerate")


@pytest.mark.parametrize("family,method", [("qwen2", "rtn"), ("qwen2_vl", "rtn"), ("qwen2", ["rotation", "gptq"])])
def test_offloaded_convert_equals_ram(family, method, tmp_path):
    ram, inputs = tiny_model(family)
    disk, _ = tiny_model(family)
    disk = offload_blocks_to_disk(disk, tmp_path)
    cfg = spikemllm.SpikeConfig(method=method, timesteps={"vision": 3, "text": 4})
    calib = [inputs] if method != "rtn" else None
    spikemllm.convert(ram, cfg, calib=calib, progress=False)
    spikemllm.convert(disk, cfg, calib=calib, progress=False)
    with torch.no_grad():
        a = ram(**inputs).logits
        b = disk(**inputs).logits
    assert torch.equal(a, b)
