"""One budget unit: `spikemllm med`, `spikemllm eval` and the demo's report price a plan the same way
(MAC-weighted average timesteps over the calibration set's tokens), and a plan allocated under a budget is
never read back above it."""
from __future__ import annotations

import json

import pytest

import spikemllm
from spikemllm.cli.common import load_model
from spikemllm.cli.main import main
from spikemllm.msts import med
from spikemllm.msts.budget import Pricer, calibration_set, mac_weighted_timesteps, model_budget
from spikemllm.report.tables import budget_cell

CALIB = "minibench:6"


@pytest.fixture(scope="module")
def folder(random_bundled, tmp_path_factory):
    model, proc = random_bundled
    d = tmp_path_factory.mktemp("bundled_like")
    model.save_pretrained(d)
    proc.save_pretrained(d)
    return d


@pytest.mark.parametrize("strategy", ["med", "search"])
def test_med_eval_and_report_agree_and_stay_under_the_budget(folder, tmp_path, strategy, capsys):
    out = tmp_path / "med"
    assert main(["med", "--model", str(folder), "--calib", CALIB, "--budget", "3.5", "--strategy", strategy,
                 "--levels", "2,3,4,5", "--rounds", "1", "--out", str(out)]) == 0
    alloc = json.loads((out / "allocation.json").read_text())
    assert alloc["calib"] == CALIB and alloc["unit"].startswith("MAC-weighted")
    res = tmp_path / "eval.json"
    assert main(["eval", "--model", str(folder), "--config", str(out / "config.json"), "--calib", CALIB,
                 "--bench", "mme", "--limit", "1", "--json", str(res), "--quiet"]) == 0
    printed = capsys.readouterr().out
    ev = json.loads(res.read_text())["cost"]["budget"]
    # the demo's report prices rows with a Pricer built from MED's counting pass on the same set
    model, proc = load_model(str(folder))
    cfg = spikemllm.SpikeConfig.from_json(str(out / "config.json"))
    report = Pricer(med(model, calibration_set(CALIB, model, proc), config=cfg, sensitivity=False).macs, CALIB)(cfg)
    assert ev["value"] == pytest.approx(alloc["cost"], rel=1e-12)
    assert report.value == pytest.approx(alloc["cost"], rel=1e-12)
    assert budget_cell(report.to_dict()) == budget_cell(ev)
    assert alloc["cost"] <= 3.5 + 1e-9 and ev["value"] <= 3.5 + 1e-9
    assert f"budget {ev['value']:.3f}" in printed and "avg T" not in printed


def test_budget_does_not_depend_on_batching_and_counts_tokens_not_padding(random_bundled):
    model, proc = random_bundled
    cfg = spikemllm.SpikeConfig(timesteps={"vision": 3, "text": 4})
    one = model_budget(model, calibration_set(CALIB, model, proc, batch_size=1), cfg)
    six = model_budget(model, calibration_set(CALIB, model, proc, batch_size=6), cfg)  # left-padded rows
    assert six.value == pytest.approx(one.value, rel=1e-12)
    assert (one.vision, one.text) == (3.0, 4.0)
    assert 3.0 < one.value < 4.0


def test_converted_model_is_priced_at_the_timesteps_it_runs(random_bundled):
    import copy

    model, proc = random_bundled
    calib = calibration_set(CALIB, model, proc)
    cfg = spikemllm.SpikeConfig(timesteps={"vision": 2, "text": 5}, layer_timesteps={"lm.1": {"vision": 4, "text": 3}})
    spk = spikemllm.convert(copy.deepcopy(model), cfg, progress=False)
    assert model_budget(spk, calib).value == pytest.approx(model_budget(model, calib, cfg).value, rel=1e-12)
    with pytest.raises(ValueError, match="already converted"):
        model_budget(spk, calib, cfg.replace(timesteps=3))
    with pytest.raises(ValueError, match="pass the SpikeConfig"):
        model_budget(model, calib)


def test_the_formula():
    macs = {"vision.0": {"vision": 100, "text": 0}, "lm.0": {"vision": 300, "text": 600}}
    t = {"vision.0": {"vision": 6, "text": 6}, "lm.0": {"vision": 2, "text": 4}}
    assert mac_weighted_timesteps(macs, lambda g, m: t[g][m]) == pytest.approx((600 + 600 + 2400) / 1000)
    assert mac_weighted_timesteps(macs, lambda g, m: t[g][m], ("vision",)) == pytest.approx((600 + 600) / 400)
