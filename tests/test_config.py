"""SpikeConfig: frozen, normalised once, JSON round-trip, and every invalid field refused with a ValueError that
names the field."""
from __future__ import annotations

import dataclasses
import json

import pytest

from spikemllm import SpikeConfig
from spikemllm.config import CONFIG_VERSION

CONFIGS = [
    SpikeConfig(),
    SpikeConfig(coder="if", timesteps=15, signed=False, weight_bits=8, attention="spike", mode="faithful"),
    SpikeConfig(coder="tc-lif", timesteps={"vision": 3, "text": 4}, layer_timesteps={"lm.0": 5, "vision.1": {"vision": 2, "text": 6}},
                weight_granularity="per-group", group_size=32, targets=["q_proj", r"re:mlp\.(up|down)_proj$"],
                ignore=[], act_clip=0.9),
    SpikeConfig(method=["rtn"], method_options={"rtn": {}}, weight_bits=2, timesteps=1),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=range(len(CONFIGS)))
def test_json_round_trip(cfg, tmp_path):
    assert SpikeConfig.from_json(cfg.to_json()) == cfg
    assert SpikeConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    path = tmp_path / "c.json"
    cfg.to_json(str(path))
    assert SpikeConfig.from_json(str(path)) == cfg
    assert json.loads(path.read_text())["version"] == CONFIG_VERSION


def test_normalisation():
    c = SpikeConfig(timesteps=5, layer_timesteps={"lm.1": 2}, targets="q_proj", method=["rtn"])
    assert c.timesteps == {"vision": 5, "text": 5}
    assert c.layer_timesteps == {"lm.1": {"vision": 2, "text": 2}}
    assert c.targets == ("q_proj",) and c.ignore == ("lm_head",)
    assert c.method == "rtn" and c.methods == ("rtn",)
    assert c.timesteps_for("lm", 1) == {"vision": 2, "text": 2}
    assert c.timesteps_for("lm", 0) == {"vision": 5, "text": 5}
    assert c.timesteps_for("vision", 1) == {"vision": 5, "text": 5}
    assert c.max_timesteps() == 5
    assert SpikeConfig().timesteps == {"vision": 3, "text": 4}  # the paper's headline setting


def test_frozen_and_replace():
    c = SpikeConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.coder = "if"
    d = c.replace(coder="if", timesteps=7)
    assert d.coder == "if" and d.timesteps == {"vision": 7, "text": 7} and c.coder == "tc-lif"
    with pytest.raises(ValueError, match="timesteps"):
        c.replace(timesteps=16)  # TC-LIF: at most 15 steps


INVALID = [
    ("coder", dict(coder="lif")),
    ("coder", dict(coder=None)),
    ("timesteps", dict(timesteps=0)),
    ("timesteps", dict(timesteps=True)),
    ("timesteps", dict(timesteps=3.0)),
    ("timesteps", dict(timesteps={"vision": 3})),
    ("timesteps", dict(timesteps={"vision": 3, "text": 4, "audio": 2})),
    ("timesteps", dict(timesteps={"vision": 3, "text": "4"})),
    ("timesteps", dict(coder="tc-lif", timesteps=16)),
    ("layer_timesteps", dict(layer_timesteps={"layer.0": 3})),
    ("layer_timesteps", dict(layer_timesteps={"lm.x": 3})),
    ("layer_timesteps", dict(layer_timesteps={"lm.0": 0})),
    ("layer_timesteps", dict(layer_timesteps=5)),
    ("layer_timesteps", dict(layer_timesteps=[("lm.0", 3)])),
    ("weight_bits", dict(weight_bits=1)),
    ("weight_bits", dict(weight_bits=9)),
    ("weight_bits", dict(weight_bits=True)),
    ("weight_bits", dict(weight_bits=4.0)),
    ("weight_granularity", dict(weight_granularity="per-token")),
    ("group_size", dict(group_size=0)),
    ("group_size", dict(group_size=True)),
    ("method", dict(method="")),
    ("method", dict(method=[])),
    ("method", dict(method=5)),
    ("method", dict(method=["rtn", 3])),
    ("method_options", dict(method_options=[])),
    ("method_options", dict(method_options={"rtn": 5})),
    ("targets", dict(targets=[""])),
    ("targets", dict(targets=["re:("])),
    ("targets", dict(targets=5)),
    ("ignore", dict(ignore=[None])),
    ("ignore", dict(ignore=7)),
    ("attention", dict(attention="flash")),
    ("act_clip", dict(act_clip=0)),
    ("act_clip", dict(act_clip=1.5)),
    ("act_clip", dict(act_clip="1")),
    ("act_clip", dict(act_clip=True)),
    ("signed", dict(coder="tc-lif", signed=False)),
    ("signed", dict(coder="if", signed="no")),
    ("mode", dict(mode="exact")),
    ("version", dict(version=2)),
]


@pytest.mark.parametrize("field,kw", INVALID, ids=[f"{f}-{i}" for i, (f, _) in enumerate(INVALID)])
def test_invalid_field_raises_valueerror_naming_it(field, kw):
    with pytest.raises(ValueError) as e:
        SpikeConfig(**kw)
    msg = str(e.value)
    assert f"SpikeConfig.{field}" in msg and "allowed" in msg and "\n" not in msg


def test_unknown_fields_and_bad_json(tmp_path):
    with pytest.raises(ValueError, match="unknown SpikeConfig fields: colour"):
        SpikeConfig.from_dict({"colour": "red"})
    with pytest.raises(ValueError, match="malformed"):
        SpikeConfig.from_json("{not json")
    with pytest.raises(ValueError, match="must be an object"):
        SpikeConfig.from_json(str(_write(tmp_path / "list.json", "[1, 2]")))
    with pytest.raises(ValueError, match="cannot read SpikeConfig JSON"):
        SpikeConfig.from_json(str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="SpikeConfig.coder"):
        SpikeConfig.from_json('{"coder": "lif"}')


def _write(p, text):
    p.write_text(text)
    return p


def test_public_api():
    import spikemllm

    for name in ("convert", "SpikeConfig", "save", "load", "collect_stats", "set_mode"):
        assert name in spikemllm.__all__ and callable(getattr(spikemllm, name))


def test_to_json_path_replaces_the_file_whole_or_not_at_all(tmp_path, monkeypatch):
    # a crash between writing and renaming must leave the previous config readable and no temporary file behind
    path = tmp_path / "spike.json"
    old = SpikeConfig(timesteps=3)
    old.to_json(str(path))
    assert SpikeConfig.from_json(str(path)) == old

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", crash)
    with pytest.raises(OSError, match="disk full"):
        SpikeConfig(timesteps=4).to_json(str(path))
    assert SpikeConfig.from_json(str(path)) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spike.json"]
