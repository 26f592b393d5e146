"""Streaming conversion of a HF folder equals loading it and converting in place, bit for bit; bad folders are
refused before any work, naming the file and the tensor; the in-place path frees each float layer."""
from __future__ import annotations

import gc
import importlib
import json
import weakref

import pytest
import torch
from torch import nn

import spikemllm
from spikemllm.errors import CheckpointError, InsufficientMemory
from spikemllm.opener import open_model
from spikemllm.spikify import stream
from spikemllm.spikify.stream import Estimate, check_memory, convert_folder, plan


def _save(family: str, d, **kw):
    model, inputs = spikemllm.tiny_model(family)
    model.save_pretrained(d, max_shard_size="20KB", **kw)
    return inputs


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    d = tmp_path_factory.mktemp("hf") / "qwen2vl"
    inputs = _save("qwen2_vl", d)
    assert (d / "model.safetensors.index.json").is_file() and len(list(d.glob("*.safetensors"))) > 2
    return d, inputs


def _logits(model, inputs):
    with torch.no_grad():
        return model(**inputs).logits


@pytest.mark.parametrize("method", ["rtn", ["rotation", "gptq"], ["smoothquant", "gptq"]])
def test_streaming_equals_in_place(sharded, method):
    d, inputs = sharded
    cfg = spikemllm.SpikeConfig(method=method, attention="spike")
    calib = [inputs] if method != "rtn" else None
    ref, _ = open_model(d)
    spikemllm.convert(ref, cfg, calib=calib, progress=False)
    got = convert_folder(d, cfg, calib=calib, progress=False)
    a, b = ref.state_dict(), got.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k
    assert not [n for n, t in got.state_dict().items() if t.device.type == "meta"]
    assert not any(hasattr(m, "_hf_hook") for m in got.modules())  # no offload hook left behind
    assert torch.equal(_logits(ref, inputs), _logits(got, inputs))


def test_bfloat16_keeps_codes_int8_and_matches_bf16_in_place(sharded):
    d, inputs = sharded
    cfg = spikemllm.SpikeConfig()
    got = convert_folder(d, cfg, dtype="bfloat16", progress=False)
    ref, _ = open_model(d)
    spikemllm.convert(ref.to(torch.bfloat16), cfg, progress=False)
    sl = [m for m in got.modules() if isinstance(m, spikemllm.SpikeLinear)]
    assert sl and all(m.qweight.dtype == torch.int8 for m in sl)
    assert got.get_submodule("model.language_model.embed_tokens").weight.dtype == torch.bfloat16
    for k, v in ref.state_dict().items():
        assert torch.equal(v, got.state_dict()[k]), k


def test_missing_shard_names_file_and_tensor(sharded, tmp_path):
    import shutil

    d = tmp_path / "copy"
    shutil.copytree(sharded[0], d)
    index = json.loads((d / "model.safetensors.index.json").read_text())["weight_map"]
    key, shard = sorted(index.items())[-1]
    (d / shard).unlink()
    with pytest.raises(CheckpointError) as e:
        plan(d, spikemllm.SpikeConfig())
    msg = str(e.value)
    assert shard in msg and "is missing" in msg and any(k in msg for k, f in index.items() if f == shard)
    assert "\n" not in msg


def test_shape_that_disagrees_with_config_names_file_and_tensor(sharded, tmp_path):
    import shutil

    d = tmp_path / "copy"
    shutil.copytree(sharded[0], d)
    cfg = json.loads((d / "config.json").read_text())
    cfg.setdefault("text_config", {})["intermediate_size"] = 96  # the shards hold 128
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError) as e:
        plan(d, spikemllm.SpikeConfig())
    msg = str(e.value)
    assert "tensor model.layers.0.mlp." in msg and "128" in msg and "96" in msg and ".safetensors:" in msg
    assert "\n" not in msg


def test_memory_refusal_and_estimate(sharded, monkeypatch):
    d, _ = sharded
    pl = plan(d, spikemllm.SpikeConfig())
    est = pl.estimate
    assert est.spiking < est.float_model and est.block > 0 and "GiB peak" in est.describe()
    monkeypatch.setattr(stream, "available_memory", lambda: 1024)
    with pytest.raises(InsufficientMemory) as e:
        check_memory(est)
    assert "--no-memory-check" in str(e.value) and "--dtype bfloat16" in str(e.value) and "--offload" in str(e.value)
    check_memory(Estimate(spiking=10, block=10, float_model=30, overhead=0), available=20)
    with pytest.raises(InsufficientMemory):
        convert_folder(d, spikemllm.SpikeConfig(), progress=False)
    assert convert_folder(d, spikemllm.SpikeConfig(), progress=False, memory_check=False).spike_config is not None


def test_in_place_convert_frees_each_float_layer_as_it_goes(monkeypatch):
    """When a layer is converted, its float weight has no owner left (before the next layer is converted)."""
    model, _ = spikemllm.tiny_model("qwen2_vl")
    targets = [n for n, m in model.named_modules() if type(m) is nn.Linear and n != "lm_head"]
    refs = {n: weakref.ref(model.get_submodule(n).weight) for n in targets}
    seen: list[tuple[str, list[str]]] = []
    conv = importlib.import_module("spikemllm.spikify.convert")
    orig = conv.spikify_layer

    def spy(model_, mm, ctx, name, lin, **kw):
        gc.collect()
        seen.append((name, [n for n, r in refs.items() if r() is not None]))  # before this layer is converted
        return orig(model_, mm, ctx, name, lin, **kw)

    monkeypatch.setattr(conv, "spikify_layer", spy)
    spikemllm.convert(model, spikemllm.SpikeConfig(), progress=False)
    assert len(seen) == len(targets)
    for i, (name, alive) in enumerate(seen):
        done = {n for n, _ in seen[:i]}
        assert not done & set(alive)  # every layer converted so far was freed before the next one
        assert len(alive) == len(targets) - i  # the others are still there, until their turn
    gc.collect()
    assert not [n for n, r in refs.items() if r() is not None]
