"""--device/--dtype on every command that loads a model, --offload/--max-memory on convert, eval and med: a
device the machine lacks is one line and exit code 2, and offloading a model below its size changes no output."""
from __future__ import annotations

import argparse
import json

import pytest
import torch

import spikemllm
from spikemllm import placement as pl
from spikemllm.cli import common
from spikemllm.cli.main import build_parser, main

LOADING = ("convert", "demo", "eval", "energy", "med")
OFFLOADING = ("convert", "eval", "med")
SMALL = "cpu=3MiB"  # the bundled model is 11 MB: most of it goes to disk


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    ap = build_parser()
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("name", LOADING)
def test_every_model_loading_command_has_device_and_dtype(name):
    p = _subparsers()[name]
    flags = {s for a in p._actions for s in a.option_strings}
    assert {"--device", "--dtype"} <= flags
    assert ({"--offload", "--max-memory"} <= flags) == (name in OFFLOADING)
    text = p.format_help()
    assert "{auto,cpu,cuda,mps}" in text and "{auto,float32,bfloat16,float16}" in text


@pytest.fixture
def no_cuda(monkeypatch):
    """A machine without CUDA, whatever this one has."""
    monkeypatch.setattr(pl, "cuda_available", lambda: False)


@pytest.mark.parametrize("argv", [
    ["eval", "--model", "bundled", "--device", "cuda", "--bench", "textvqa", "--limit", "10"],
    ["convert", "--model", "bundled", "--device", "cuda", "--out", "{tmp}/ck"],
    ["med", "--model", "bundled", "--device", "cuda", "--budget", "3.5", "--out", "{tmp}/med"],
    ["energy", "--model", "bundled", "--device", "cuda"],
    ["demo", "--device", "cuda", "--out", "{tmp}/demo"],
])
def test_absent_cuda_is_one_line_and_exit_code_2(no_cuda, argv, tmp_path, capsys):
    rc = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and "--device cuda: this machine has no CUDA device; use --device cpu" in err
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing half-made


def _spy_models(monkeypatch) -> list:
    """Record every model the CLI opens."""
    seen: list = []
    real = common.open_model

    def spy(*a, **k):
        out = real(*a, **k)
        out[0]._test_device_map = dict(getattr(out[0], "hf_device_map", None) or {})  # as opened
        seen.append(out[0])
        return out
    monkeypatch.setattr(common, "open_model", spy)
    return seen


def test_eval_bfloat16_on_the_cpu(monkeypatch, tmp_path):
    """The acceptance command: eval --model bundled --device cpu --dtype bfloat16 --bench textvqa --limit 10."""
    seen = _spy_models(monkeypatch)
    out = tmp_path / "r.json"
    assert main(["eval", "--model", "bundled", "--device", "cpu", "--dtype", "bfloat16", "--bench", "textvqa",
                 "--limit", "10", "--quiet", "--json", str(out)]) == 0
    (model,) = seen
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    res = json.loads(out.read_text())
    assert res["n"] == 10 and "textvqa" in res["tasks"]


def _records(path) -> list:
    res = json.loads(path.read_text())
    return [(r["uid"], r["prediction"], r["score"]) for r in res["records"]], res["tasks"], res.get("cost")


def _offloaded(model) -> bool:
    return "disk" in model._test_device_map.values()


def test_eval_offloaded_equals_in_memory(tmp_path, monkeypatch):
    seen = _spy_models(monkeypatch)
    cfg = tmp_path / "cfg.json"
    spikemllm.SpikeConfig().to_json(str(cfg))
    runs = {}
    for name, extra in (("ram", []), ("disk", ["--offload", str(tmp_path / "off"), "--max-memory", SMALL])):
        out = tmp_path / f"{name}.json"
        assert main(["eval", "--model", "bundled", "--config", str(cfg), "--device", "cpu", "--bench", "textvqa,mme",
                     "--limit", "4", "--quiet", "--json", str(out), *extra]) == 0
        runs[name] = _records(out)
    assert [_offloaded(m) for m in seen] == [False, True]
    assert runs["disk"] == runs["ram"]


def _state(path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_convert_offloaded_below_its_size_equals_in_memory(tmp_path, monkeypatch):
    seen = _spy_models(monkeypatch)
    from spikemllm.zoo import BUNDLED_DIR

    size = (BUNDLED_DIR / "model.safetensors").stat().st_size
    assert pl.parse_size(SMALL.split("=")[1]) < size / 2
    assert main(["convert", "--model", "bundled", "--device", "cpu", "--out", str(tmp_path / "ram")]) == 0
    assert main(["convert", "--model", "bundled", "--device", "cpu", "--out", str(tmp_path / "disk"),
                 "--offload", str(tmp_path / "off"), "--max-memory", SMALL]) == 0
    assert [_offloaded(m) for m in seen] == [False, True]
    a, b = _state(tmp_path / "ram"), _state(tmp_path / "disk")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # and the checkpoints compute the same
    ma, proc = spikemllm.open_model(tmp_path / "ram")
    mb, _ = spikemllm.open_model(tmp_path / "disk")
    from spikemllm.msts.budget import calibration_set

    batch = calibration_set("minibench:2", ma, proc)[0]
    with torch.no_grad():
        assert torch.equal(ma(**batch).logits, mb(**batch).logits)


def test_med_offloaded_equals_in_memory(tmp_path, monkeypatch):
    seen = _spy_models(monkeypatch)
    outs = {}
    for name, extra in (("ram", []), ("disk", ["--offload", str(tmp_path / "off"), "--max-memory", SMALL])):
        out = tmp_path / name
        assert main(["med", "--model", "bundled", "--device", "cpu", "--budget", "3.5", "--strategy", "med",
                     "--calib", "minibench:5", "--out", str(out), *extra]) == 0
        med = json.loads((out / "med.json").read_text())
        med.pop("meta", None)  # timing
        outs[name] = (med, json.loads((out / "allocation.json").read_text()), (out / "config.json").read_text())
    assert [_offloaded(m) for m in seen] == [False, True]
    assert outs["disk"] == outs["ram"]
