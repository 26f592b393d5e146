"""Saving and loading converted models: bit-identical reloads, packed int4 on disk, every corruption refused with
a one-line CheckpointError before anything loads, atomic writes (no partial folder, an existing one kept)."""
from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

import spikemllm
from spikemllm.io import CheckpointError, pack_int4, read_manifest, unpack_int4




def _logits(model, inputs, mode="fused"):
    spikemllm.set_mode(model, mode)
    with torch.no_grad():
        out = model(**inputs)
    return out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state


def _converted(family="qwen2_vl", **cfg):
    model, inputs = spikemllm.tiny_model(family)
    spikemllm.convert(model, spikemllm.SpikeConfig(**cfg), progress=False)
    return model, inputs


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A saved W4 TC-LIF qwen2_vl with spiking attention, and its logits before saving."""
    torch.set_num_threads(1)
    model, inputs = _converted("qwen2_vl", attention="spike")
    path = tmp_path_factory.mktemp("ck") / "model"
    spikemllm.save(model, path)
    return path, inputs, _logits(model, inputs)


def _copy(saved, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(saved[0], dst)
    return dst


def _one_line_error(path):
    with pytest.raises(CheckpointError) as e:
        spikemllm.load(path)
    msg = str(e.value)
    assert msg and "\n" not in msg
    return msg


@pytest.mark.parametrize("attention", ["dense", "spike"])
@pytest.mark.parametrize("family,cfg", [
    ("qwen2_vl", dict(coder="tc-lif", timesteps={"vision": 3, "text": 4})),
    ("llava", dict(coder="if", timesteps={"vision": 5, "text": 6}, weight_bits=8)),
    ("internvl", dict(coder="tc-lif", timesteps=4, weight_granularity="per-group", group_size=32)),
    ("idefics3", dict(coder="tc-lif", timesteps={"vision": 3, "text": 4}, layer_timesteps={"lm.1": 2})),
    ("qwen2_5_vl", dict(coder="if", timesteps=7, signed=False)),
])
def test_reload_gives_identical_logits(tmp_path, family, cfg, attention):
    model, inputs = _converted(family, attention=attention, **cfg)
    before = {m: _logits(model, inputs, m) for m in ("fused", "faithful")}
    spikemllm.save(model, tmp_path / "ck")
    loaded = spikemllm.load(tmp_path / "ck")
    assert loaded.spike_config == model.spike_config
    assert type(loaded) is type(model)
    for mode, want in before.items():
        assert torch.equal(_logits(loaded, inputs, mode), want)
    for (k, a), (k2, b) in zip(sorted(model.state_dict().items()), sorted(loaded.state_dict().items())):
        assert k == k2 and torch.equal(a, b), k


def test_reloaded_model_generates_the_same_tokens(saved):
    path, inputs, _ = saved
    a = spikemllm.load(path)
    b = spikemllm.load(path)
    spikemllm.set_mode(b, "faithful")
    with torch.no_grad():
        ta = a.generate(**inputs, max_new_tokens=4, do_sample=False)
        tb = b.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert torch.equal(ta, tb)


def test_qweight_is_packed_two_int4_per_byte(saved):
    from safetensors import safe_open

    path = saved[0]
    manifest = json.loads((path / "manifest.json").read_text())
    model = spikemllm.load(path)
    name = "model.language_model.layers.0.mlp.down_proj.qweight"
    shape = list(model.get_submodule(name.rsplit(".", 1)[0]).qweight.shape)
    assert manifest["packed_int4"][name] == shape
    with safe_open(str(path / "model.safetensors"), framework="pt") as f:
        keys = set(f.keys())
        packed = f.get_tensor(name)
        qweights = [k for k in keys if k.endswith(".qweight")]
        assert qweights and all(f.get_tensor(k).dtype == torch.uint8 for k in qweights)
    assert packed.dtype == torch.uint8 and list(packed.shape) == [shape[0], (shape[1] + 1) // 2]
    # the bytes on disk are the codes, low nibble first
    q = model.get_submodule(name.rsplit(".", 1)[0]).qweight
    assert torch.equal(unpack_int4(packed, shape[1]), q)
    lo = (q[:, 0::2].to(torch.int16) & 0xF)
    assert torch.equal((packed & 0xF).to(torch.int16), lo)
    converted = {k[:-len(".qweight")] for k in qweights}
    assert not any(k[:-len(".weight")] in converted for k in keys if k.endswith(".weight"))  # no float copies


def test_eight_bit_weights_are_not_packed(tmp_path):
    model, _ = _converted("qwen2", weight_bits=8)
    spikemllm.save(model, tmp_path / "ck")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "ck" / "model.safetensors"), framework="pt") as f:
        t = f.get_tensor("model.layers.0.mlp.up_proj.qweight")
    assert t.dtype == torch.int8 and int(t.abs().max()) > 7


def test_pack_roundtrip_odd_length():
    q = torch.randint(-7, 8, (5, 9), dtype=torch.int8)
    p = pack_int4(q)
    assert p.shape == (5, 5) and p.dtype == torch.uint8
    assert torch.equal(unpack_int4(p, 9), q)


def test_truncated_weights_refused(saved, tmp_path):
    p = _copy(saved, tmp_path)
    f = p / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-100])
    assert "truncated or corrupt" in _one_line_error(p)


def test_byte_flipped_weights_refused(saved, tmp_path):
    p = _copy(saved, tmp_path)
    f = p / "model.safetensors"
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0x01
    f.write_bytes(bytes(b))
    assert "SHA-256" in _one_line_error(p)


@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "spike_config.json"])
def test_missing_file_refused(saved, tmp_path, name):
    p = _copy(saved, tmp_path)
    os.remove(p / name)
    assert f"{name} is missing" in _one_line_error(p)


@pytest.mark.parametrize("name", ["config.json", "spike_config.json"])
def test_edited_config_refused(saved, tmp_path, name):
    p = _copy(saved, tmp_path)
    d = json.loads((p / name).read_text())
    if name == "config.json":
        d["text_config"]["intermediate_size"] = 96
    else:
        d["weight_bits"] = 8
    (p / name).write_text(json.dumps(d))
    assert name in _one_line_error(p)


def test_wrong_folder_refused(tmp_path, saved):
    assert "not a folder" in _one_line_error(tmp_path / "nope")
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    assert "no manifest.json" in _one_line_error(tmp_path / "hf")
    assert "not a folder" in _one_line_error(saved[0] / "model.safetensors")


def test_bad_manifest_refused(saved, tmp_path):
    p = _copy(saved, tmp_path)
    m = json.loads((p / "manifest.json").read_text())
    (p / "manifest.json").write_text(json.dumps({**m, "format_version": 99}))
    assert "v99" in _one_line_error(p)
    (p / "manifest.json").write_text("{not json")
    assert "manifest.json is corrupt" in _one_line_error(p)
    del m["model_class"]
    (p / "manifest.json").write_text(json.dumps(m))
    assert "lacks model_class" in _one_line_error(p)
    assert read_manifest(saved[0])["format"] == "spikemllm"


def test_save_refuses_to_overwrite_and_keeps_the_folder(saved, tmp_path):
    p = _copy(saved, tmp_path)
    before = {f.name: f.read_bytes() for f in p.iterdir()}
    model, _ = _converted("qwen2")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        spikemllm.save(model, p)
    assert {f.name: f.read_bytes() for f in p.iterdir()} == before
    spikemllm.save(model, p, overwrite=True)  # explicit overwrite replaces it
    assert spikemllm.load(p).config.model_type == "qwen2"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["copy"]  # no temporary or old folder left behind


@pytest.mark.parametrize("overwrite", [False, True])
def test_failure_during_save_leaves_no_partial_folder(tmp_path, monkeypatch, overwrite):
    import safetensors.torch

    model, _ = _converted("qwen2")
    target = tmp_path / "ck"
    if overwrite:
        spikemllm.save(model, target)
        before = {f.name: f.read_bytes() for f in target.iterdir()}

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        spikemllm.save(model, target, overwrite=overwrite)
    if overwrite:  # the previous checkpoint is intact
        assert {f.name: f.read_bytes() for f in target.iterdir()} == before
        assert sorted(x.name for x in tmp_path.iterdir()) == ["ck"]
    else:
        assert list(tmp_path.iterdir()) == []


def test_save_needs_a_converted_model(tmp_path):
    model, _ = spikemllm.tiny_model("qwen2")
    with pytest.raises(ValueError, match="convert"):
        spikemllm.save(model, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_loading_never_unpickles(saved, monkeypatch):
    import pickle

    def no(*a, **k):
        raise AssertionError("load() must not unpickle")

    monkeypatch.setattr(pickle, "load", no)
    monkeypatch.setattr(pickle, "loads", no)
    monkeypatch.setattr(torch, "load", no)
    spikemllm.load(saved[0])


def test_load_builds_on_meta_without_random_init(saved, monkeypatch):
    """No parameter is initialised and then overwritten: init functions only ever see storage-less tensors."""
    path, inputs, ref = saved

    def guard(orig):
        def init(t, *a, **k):
            if t.device.type != "meta":
                raise AssertionError("load initialised a weight at random")
            return orig(t, *a, **k)
        return init

    for name in ("normal_", "uniform_", "kaiming_uniform_", "trunc_normal_", "xavier_uniform_", "zeros_", "ones_"):
        monkeypatch.setattr(torch.nn.init, name, guard(getattr(torch.nn.init, name)))
    model = spikemllm.load(path)
    assert torch.equal(_logits(model, inputs), ref)


def test_load_dtype_keeps_codes_int8_and_scales_float32(saved):
    path, inputs, ref = saved
    m = spikemllm.load(path, dtype="bfloat16")
    sl = [x for x in m.modules() if isinstance(x, spikemllm.SpikeLinear)]
    assert {x.qweight.dtype for x in sl} == {torch.int8} and {x.wscale.dtype for x in sl} == {torch.float32}
    assert m.lm_head.weight.dtype == torch.bfloat16
    assert m.get_submodule("model.language_model.norm").weight.dtype == torch.bfloat16
    f32 = spikemllm.load(path, dtype=torch.float32, device="cpu")
    assert torch.equal(_logits(f32, inputs), ref)
    with pytest.raises(ValueError, match="allowed values: auto, float32"):
        spikemllm.load(path, dtype="int8")
    with torch.no_grad():
        out = m(**inputs).logits
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
