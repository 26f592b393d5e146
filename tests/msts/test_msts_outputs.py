"""Plots and the ``spikemllm med`` command write what they promise."""
from __future__ import annotations

import json

import pytest

import spikemllm
from spikemllm.cli.main import main
from spikemllm.msts import plan
from spikemllm.msts.plots import plot_allocation, plot_med


def test_plots_are_written_as_png_and_svg(silenced_vlm, tmp_path):
    _, _, r = silenced_vlm
    paths = plot_med(r, tmp_path / "med") + plot_allocation(plan(r, 3.5, "search"), r, tmp_path / "alloc")
    assert sorted(p.name for p in paths) == ["alloc.png", "alloc.svg", "med.png", "med.svg"]
    for p in paths:
        assert p.stat().st_size > 1000
    assert (tmp_path / "med.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / "alloc.svg").read_text()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    model, _ = spikemllm.tiny_model("qwen2")
    d = tmp_path_factory.mktemp("qwen2")
    model.save_pretrained(d)
    return d


@pytest.mark.parametrize("strategy", ["med", "search"])
def test_cli_writes_json_plots_and_a_config_under_budget(model_dir, tmp_path, strategy, capsys):
    out = tmp_path / "out"
    rc = main(["med", "--model", str(model_dir), "--calib", "random:2", "--budget", "3.5", "--strategy", strategy,
               "--out", str(out)])
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["med.json", "allocation.json", "config.json", "med.png", "med.svg", "allocation.png",
                            "allocation.svg", "run.json", ".spikemllm-run"])  # + the run record and marker
    alloc = json.loads((out / "allocation.json").read_text())
    assert alloc["cost"] <= 3.5 + 1e-9 and alloc["strategy"] == strategy
    cfg = spikemllm.SpikeConfig.from_json(str(out / "config.json"))
    assert set(cfg.layer_timesteps) == {"lm.0", "lm.1"}
    # the search measures plans (its history and KL); med reads the cosines alone
    assert bool(alloc["history"]) == (alloc["measured_kl"] is not None) == (strategy == "search")
    assert "cost" in capsys.readouterr().out
    # a second run refuses to overwrite
    assert main(["med", "--model", str(model_dir), "--calib", "random:2", "--budget", "3.5", "--strategy", "med",
                 "--out", str(out)]) == 2


@pytest.mark.parametrize("budget", ["0.5", "16"])
def test_cli_bad_budget_fails_before_loading(tmp_path, budget, capsys):
    rc = main(["med", "--model", str(tmp_path / "missing"), "--budget", budget, "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert f"budget={float(budget)!r} is out of range" in err and "1 <= budget <= 15" in err


def test_cli_on_a_converted_checkpoint_uses_its_config(model_dir, tmp_path):
    model, _ = spikemllm.tiny_model("qwen2")
    cfg = spikemllm.SpikeConfig(timesteps=5)
    spikemllm.save(spikemllm.convert(model, cfg, progress=False), tmp_path / "ckpt")
    out = tmp_path / "out"
    assert main(["med", "--model", str(tmp_path / "ckpt"), "--calib", "random:1", "--budget", "4", "--strategy",
                 "med", "--out", str(out)]) == 0
    result = json.loads((out / "med.json").read_text())
    assert result["base_config"]["timesteps"] == {"vision": 5, "text": 5}
    assert result["meta"]["cosine_model"] == "converted"
