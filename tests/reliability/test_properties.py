"""Property tests: whatever a user or an adversary does to a config JSON, a checkpoint manifest or a benchmark
record, spikemllm answers with a SpikeMLLMError (a message it chose), never another exception."""
from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spikemllm
from spikemllm.errors import CheckpointError, ConfigError, DataError, SpikeMLLMError
from spikemllm.manifest import Manifest, parse_manifest, read_manifest_file

from reliability_inputs import ocr_entry, ocrbench_release, png_bytes, textvqa_parquet

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)


def _paths(obj, prefix=()):
    yield prefix
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        yield from _paths(v, prefix + (k,))


@st.composite
def mutated(draw, base):
    """``base`` with 1-3 random edits: a value replaced by any JSON value, a key or item deleted, a key added."""
    obj = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(obj))))
        op = draw(st.sampled_from(["replace", "delete", "add"]))
        value = draw(JSON)
        if not path:
            if op == "replace":
                obj = value
            elif op == "add" and isinstance(obj, dict):
                obj[draw(st.text(max_size=8))] = value
            continue
        parent = obj
        for k in path[:-1]:
            parent = parent[k]
        if op == "replace":
            parent[path[-1]] = value
        elif op == "delete":
            del parent[path[-1]]
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(st.text(max_size=8))] = value
    return obj


@st.composite
def text_edits(draw, text: str):
    """``text`` with a few random slices deleted, replaced or duplicated (broken JSON, mostly)."""
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 8)))
        text = text[:i] + draw(st.sampled_from(["", text[i:j] * 2, draw(st.text(max_size=4))])) + text[j:]
    return text


# ---- config JSON ------------------------------------------------------------------------------------------------
BASE_CONFIG = json.loads(spikemllm.SpikeConfig(layer_timesteps={"lm.0": {"vision": 3, "text": 5}}, ignore=["lm_head"],
                                               method=["rtn"], method_options={"rtn": {}}).to_json())


@SETTINGS
@given(st.one_of(mutated(BASE_CONFIG).map(json.dumps), text_edits(json.dumps(BASE_CONFIG))))
def test_config_json_parse(text):
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "cfg.json"
        f.write_text(text)
        try:
            cfg = spikemllm.SpikeConfig.from_json(str(f))
        except ConfigError as e:
            assert "\n" not in str(e) or "malformed" in str(e)
            return
        assert spikemllm.SpikeConfig.from_json(cfg.to_json()) == cfg  # what parses round-trips


# ---- manifest ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model, _ = spikemllm.tiny_model("qwen2")
    path = tmp_path_factory.mktemp("ck") / "ck"
    spikemllm.save(spikemllm.convert(model, spikemllm.SpikeConfig(), progress=False), path)
    return path


@SETTINGS
@given(data=st.data())
def test_manifest_parse(checkpoint, data):
    base = json.loads((checkpoint / "manifest.json").read_text())
    m = data.draw(mutated(base))
    try:
        parsed = parse_manifest(m, "manifest.json")
    except CheckpointError as e:
        assert str(e).startswith("manifest.json") and "\n" not in str(e)
        return
    assert isinstance(parsed, Manifest) and parsed.files["model.safetensors"].bytes >= 0


@SETTINGS
@given(data=st.data())
def test_manifest_file_text(checkpoint, data):
    text = data.draw(text_edits((checkpoint / "manifest.json").read_text()))
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "manifest.json"
        f.write_text(text)
        try:
            read_manifest_file(f)
        except CheckpointError as e:
            assert str(f) in str(e)


@st.composite
def schema_valid_edits(draw, base: dict, keys: list[str]) -> dict:
    """Edits that pass the schema, so that load() itself must cope: another supported class, packing or
    aliases naming tensors that do not exist or do not fit, transforms on modules that do not exist."""
    from spikemllm.manifest import supported_model_classes

    names = st.sampled_from(keys) | st.text(min_size=1, max_size=10)
    shape = st.lists(st.integers(1, 70), min_size=1, max_size=3)
    edits = {
        "model_class": st.sampled_from(sorted(supported_model_classes())),
        "attn_implementation": st.sampled_from([None, "eager", "sdpa", "flash_attention_2"]),
        "packed_int4": st.dictionaries(names, shape, max_size=2).map(lambda d: {**base["packed_int4"], **d}),
        "aliases": st.dictionaries(names, names, max_size=2),
        "input_transforms": st.dictionaries(names, st.dictionaries(st.sampled_from(["kind", "dim", "seed"]), JSON,
                                                                    max_size=2), min_size=1, max_size=1),
    }
    chosen = draw(st.lists(st.sampled_from(sorted(edits)), min_size=1, max_size=2, unique=True))
    return {**base, **{k: draw(edits[k]) for k in chosen}}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_load_with_a_schema_valid_edit(checkpoint, data, tmp_path_factory):
    import shutil

    from safetensors import safe_open

    base = json.loads((checkpoint / "manifest.json").read_text())
    with safe_open(str(checkpoint / "model.safetensors"), framework="pt") as f:
        keys = sorted(f.keys())
    m = data.draw(schema_valid_edits(base, keys))
    parse_manifest(m)  # the edit is valid as far as the schema can tell
    ck = tmp_path_factory.mktemp("edited") / "ck"
    shutil.copytree(checkpoint, ck)
    (ck / "manifest.json").write_text(json.dumps(m))
    try:
        spikemllm.load(ck)
    except CheckpointError as e:
        assert "\n" not in str(e)


# ---- benchmark records -----------------------------------------------------------------------------------------
def _load_quietly(name, path):
    from spikemllm.bench import loaders

    try:
        return loaders.load(name, path)
    except DataError:
        return None


@SETTINGS
@given(data=st.data())
def test_ocrbench_records(data):
    entries = data.draw(mutated([ocr_entry(0), ocr_entry(1, answers="HELLO")]))
    with tempfile.TemporaryDirectory() as d:
        ocrbench_release(Path(d), entries if isinstance(entries, list) else [entries])
        out = _load_quietly("ocrbench", Path(d))
        assert out is None or all(isinstance(e.question, str) and e.answers for e in out)


@SETTINGS
@given(row=mutated({"question_id": 7, "question": "what brand?", "answers": ["nokia"] * 2,
                    "image": {"bytes": "PNG", "path": None}}))
def test_textvqa_records(row):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(row, dict) and isinstance(row.get("image"), dict) and row["image"].get("bytes") == "PNG":
        row["image"]["bytes"] = png_bytes()
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "data" / "validation-00000-of-00001.parquet"
        f.parent.mkdir(parents=True)
        try:
            pq.write_table(pa.table({k: pa.array([v]) for k, v in row.items()}), f)
        except (pa.ArrowException, ValueError, TypeError, OverflowError, AttributeError):
            return  # a row parquet cannot hold: nothing to read
        _load_quietly("textvqa", Path(d))


@SETTINGS
@given(data=st.data())
def test_parquet_bytes(data):
    with tempfile.TemporaryDirectory() as d:
        f = textvqa_parquet(Path(d), [{"bytes": png_bytes(), "path": None}] * 2)
        raw = bytearray(f.read_bytes())
        for _ in range(data.draw(st.integers(1, 4))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        f.write_bytes(bytes(raw[:data.draw(st.integers(1, len(raw)))]))
        try:
            _load_quietly("textvqa", Path(d))
        except SpikeMLLMError:
            pass
