"""``spikemllm convert --model DIR --config cfg.json --out DIR``: converts a local HF folder with progress output;
bad inputs exit non-zero with a one-line error and leave no output folder behind."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

import spikemllm
from spikemllm.cli.main import main




@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    """A tiny Qwen2-VL saved with save_pretrained, plus its inputs and FP logits."""
    torch.set_num_threads(1)
    model, inputs = spikemllm.tiny_model("qwen2_vl")
    d = tmp_path_factory.mktemp("hf") / "qwen2vl"
    model.save_pretrained(d)
    return d, inputs


def _cfg(tmp_path, **kw):
    p = tmp_path / "cfg.json"
    p.write_text(json.dumps(kw) if kw else spikemllm.SpikeConfig(attention="spike").to_json())
    return p


def _errline(capsys):
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("spikemllm convert: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_convert_saves_a_loadable_checkpoint_with_progress(hf_dir, tmp_path, capsys):
    src, inputs = hf_dir
    out = tmp_path / "out"
    assert main(["convert", "--model", str(src), "--config", str(_cfg(tmp_path)), "--out", str(out)]) == 0
    cap = capsys.readouterr()
    assert "[spikemllm] streaming" in cap.out and "memory estimate:" in cap.out
    assert "[spikemllm] converting (tc-lif" in cap.out and f"[spikemllm] saved {out}" in cap.out
    assert "convert" in cap.err and "5/5" in cap.err  # the progress bar over blocks: 2 vision, 2 LM, the rest
    loaded = spikemllm.load(out)
    assert loaded.spike_config == spikemllm.SpikeConfig(attention="spike")
    # the CLI result computes what converting in Python computes
    ref, _ = spikemllm.tiny_model("qwen2_vl")
    spikemllm.convert(ref, spikemllm.SpikeConfig(attention="spike"), progress=False)
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, ref(**inputs).logits)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.json", "out"]


def test_default_config_and_overwrite(hf_dir, tmp_path, capsys):
    src, _ = hf_dir
    out = tmp_path / "out"
    assert main(["convert", "--model", str(src), "--out", str(out)]) == 0
    assert spikemllm.load(out).spike_config == spikemllm.SpikeConfig()
    capsys.readouterr()
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    cfg = _cfg(tmp_path, coder="if", timesteps=7)
    assert main(["convert", "--model", str(src), "--config", str(cfg), "--out", str(out)]) == 2
    assert "exists; pass --overwrite" in _errline(capsys)
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before
    assert main(["convert", "--model", str(src), "--config", str(cfg), "--out", str(out), "--overwrite"]) == 0
    assert spikemllm.load(out).spike_config.coder == "if"


def _gpt2_dir(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    d = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64, n_positions=32,
                               bos_token_id=0, eos_token_id=0)).save_pretrained(d)
    return d


def _corrupt_copy(src, tmp_path):
    d = tmp_path / "corrupt"
    shutil.copytree(src, d)
    f = d / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    return d


def _sharded_copy(src, tmp_path, break_it):
    """A sharded save of the tiny model, broken by ``break_it(folder)``."""
    model, _ = spikemllm.tiny_model("qwen2_vl")
    d = tmp_path / "sharded"
    model.save_pretrained(d, max_shard_size="20KB")
    break_it(d)
    return d


def _drop_last_shard(d):
    index = json.loads((d / "model.safetensors.index.json").read_text())["weight_map"]
    (d / sorted(index.values())[-1]).unlink()


def _shrink_mlp(d):
    cfg = json.loads((d / "config.json").read_text())
    cfg["text_config"]["intermediate_size"] = 96
    (d / "config.json").write_text(json.dumps(cfg))


CASES = {
    "bad-field": (lambda src, t: ["--model", str(src), "--config", str(_cfg(t, coder="lif"))], "SpikeConfig.coder='lif'"),
    "unknown-field": (lambda src, t: ["--model", str(src), "--config", str(_cfg(t, colour=1))], "unknown SpikeConfig fields"),
    "malformed-json": (lambda src, t: ["--model", str(src), "--config", str(_write(t / "c.json", "{"))], "malformed"),
    "missing-config": (lambda src, t: ["--model", str(src), "--config", str(t / "nope.json")], "cannot read SpikeConfig"),
    "misfit": (lambda src, t: ["--model", str(src), "--config", str(_cfg(t, layer_timesteps={"lm.9": 3}))],
               "'lm.9' but this qwen2-vl model has 2 lm layers"),
    "targets-nothing": (lambda src, t: ["--model", str(src), "--config", str(_cfg(t, targets=["zzz"]))],
                        "matches no nn.Linear"),
    "missing-model": (lambda src, t: ["--model", str(t / "nope")], "neither 'bundled' nor a folder"),
    "not-hf-folder": (lambda src, t: ["--model", str(_mkdir(t / "empty"))], "has no config.json"),
    "unsupported": (lambda src, t: ["--model", str(_gpt2_dir(t))], "unsupported model (model_type='gpt2'); supported families:"),
    "corrupt-weights": (lambda src, t: ["--model", str(_corrupt_copy(src, t))], "cannot load"),
    "missing-shard": (lambda src, t: ["--model", str(_sharded_copy(src, t, _drop_last_shard))],
                      "-of-00022.safetensors is missing: model.safetensors.index.json places"),
    "wrong-shape": (lambda src, t: ["--model", str(_sharded_copy(src, t, _shrink_mlp))],
                    "has shape [64, 128] but config.json implies [64, 96]"),
}


def _write(p, text):
    p.write_text(text)
    return p


def _mkdir(p):
    p.mkdir()
    return p


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_inputs_exit_nonzero_with_one_line_and_no_output(hf_dir, tmp_path, capsys, case):
    build, expect = CASES[case]
    args = build(hf_dir[0], tmp_path)
    out = tmp_path / "out"
    before = set(os.listdir(tmp_path))
    rc = main(["convert", *args, "--out", str(out)])
    assert rc != 0
    assert expect in _errline(capsys)
    assert not out.exists()
    assert set(os.listdir(tmp_path)) == before  # no temporary folder left either


def test_entry_point_exit_code_and_stderr(tmp_path):
    """The real command line: a non-zero exit status and one error line on stderr."""
    r = subprocess.run([sys.executable, "-m", "spikemllm.cli.main", "convert", "--model", str(tmp_path / "nope"),
                        "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 2
    assert [ln for ln in r.stderr.splitlines() if "error" in ln] == [
        f"spikemllm convert: error: --model {str(tmp_path / 'nope')!r} does not exist: it is neither 'bundled' nor a "
        "folder; give a local "
        "Hugging Face model folder (config.json + *.safetensors) or a spikemllm checkpoint"]
    assert not (tmp_path / "out").exists()


def test_memory_refusal_before_any_work_and_override(hf_dir, tmp_path, capsys, monkeypatch):
    from spikemllm.spikify import stream

    src, _ = hf_dir
    out = tmp_path / "out"
    monkeypatch.setattr(stream, "available_memory", lambda: 1024 ** 2)
    assert main(["convert", "--model", str(src), "--out", str(out)]) == 2
    line = _errline(capsys)
    assert "converting needs about" in line and "only 0.0 GiB is available" in line and "--no-memory-check" in line
    assert not out.exists()
    assert main(["convert", "--model", str(src), "--out", str(out), "--no-memory-check"]) == 0
    assert spikemllm.load(out).spike_config == spikemllm.SpikeConfig()


def test_dtype_bfloat16_keeps_codes_int8(hf_dir, tmp_path):
    src, _ = hf_dir
    out = tmp_path / "out"
    assert main(["convert", "--model", str(src), "--out", str(out), "--dtype", "bfloat16"]) == 0
    m = spikemllm.load(out)
    assert m.lm_head.weight.dtype == torch.bfloat16
    assert {x.qweight.dtype for x in m.modules() if isinstance(x, spikemllm.SpikeLinear)} == {torch.int8}
