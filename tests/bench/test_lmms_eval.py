"""`spikemllm eval --log-samples --output-path DIR` writes lmms-eval's layout: the file names, top-level keys,
task names, metric keys and sample keys of lmms_eval_layout.yaml (written from reading lmms-eval's code), with
values aggregated the way lmms-eval aggregates them."""
from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path

import pytest
import yaml

from spikemllm.bench.lmms_eval import TASKS, lmms_results, sanitize_model_name, write_lmms_eval
from spikemllm.cli.main import main
from spikemllm.errors import ConfigError, OutputError

LAYOUT = yaml.safe_load((Path(__file__).with_name("lmms_eval_layout.yaml")).read_text())
BENCHES = ("textvqa", "docvqa", "ocrbench", "scienceqa", "mme")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One CLI run on the bundled model: 2 mini-benchmark items per benchmark, results and samples."""
    out = tmp_path_factory.mktemp("lmms")
    native = out / "native.json"
    assert main(["eval", "--model", "bundled", "--limit", "2", "--quiet", "--log-samples", "--output-path",
                 str(out / "lmms"), "--json", str(native)]) == 0
    return out / "lmms", json.loads(native.read_text())


def _files(run_dir):
    folder = run_dir / "bundled"  # lmms-eval's <output_path>/<model_name_sanitized>/
    results = [p for p in folder.iterdir() if re.match(LAYOUT["results_file"], p.name)]
    samples = {re.match(LAYOUT["samples_file"], p.name)["task"]: p for p in folder.iterdir()
               if re.match(LAYOUT["samples_file"], p.name)}
    assert len(results) == 1 and len(results) + len(samples) == len(list(folder.iterdir()))
    return json.loads(results[0].read_text()), {t: [json.loads(x) for x in p.read_text().splitlines()]
                                                 for t, p in samples.items()}


def test_results_file_has_lmms_eval_keys_and_task_names(run_dir):
    res, samples = _files(run_dir[0])
    assert set(LAYOUT["top_level_keys"]) <= set(res)
    assert set(LAYOUT["config_keys"]) <= set(res["config"])
    names = {LAYOUT["tasks"][b]["name"] for b in BENCHES}
    assert set(res["results"]) == names == set(res["configs"]) == set(res["versions"]) == set(samples)
    assert set(res["n-samples"]) == names and set(res["task_hashes"]) == names
    for bench in BENCHES:
        spec = LAYOUT["tasks"][bench]
        task = res["results"][spec["name"]]
        present = [m for m in spec["metrics"] if f"{m},none" in task]
        assert present, f"{spec['name']} has no metric of {spec['metrics']}"
        assert set(task) == {"alias"} | {f"{m},none" for m in present} | {f"{m}_stderr,none" for m in present}
        assert task["alias"] == spec["name"]
        assert res["versions"][spec["name"]] == LAYOUT["version"]
        assert set(res["n-samples"][spec["name"]]) == set(LAYOUT["n_samples_keys"])
        assert res["n-samples"][spec["name"]]["effective"] == len(samples[spec["name"]])
    assert res["model_name_sanitized"] == "bundled" and res["config"]["limit"] == 2


def test_samples_lines_have_lmms_eval_keys(run_dir):
    _, samples = _files(run_dir[0])
    for bench in BENCHES:
        spec = LAYOUT["tasks"][bench]
        for i, line in enumerate(samples[spec["name"]]):
            metrics = [k for k in line if k not in LAYOUT["sample_keys"]]
            assert set(LAYOUT["sample_keys"]) <= set(line) and metrics and set(metrics) <= set(spec["metrics"])
            assert line["doc_id"] == i and isinstance(line["filtered_resps"], list)
            assert isinstance(line["target"], str) and line["input"].strip()
            for m, fields in spec["sample_fields"].items():
                if m in line:
                    assert set(line[m]) == set(fields)


def test_values_are_aggregated_as_lmms_eval_does(run_dir):
    res, samples = _files(run_dir[0])
    native = run_dir[1]["tasks"]
    r = res["results"]
    for task, bench in (("textvqa_val", "textvqa"), ("docvqa_val", "docvqa"), ("scienceqa_img", "scienceqa")):
        key = LAYOUT["tasks"][bench]["mean"][0]
        values = [s[key] for s in samples[task]]
        assert r[task][f"{key},none"] == pytest.approx(sum(values) / len(values))
        assert r[task][f"{key},none"] == pytest.approx(native[bench]["score"] / 100)  # same scores as ours
        assert r[task][f"{key}_stderr,none"] == pytest.approx(statistics.stdev(values) / math.sqrt(len(values)))
    ocr = samples["ocrbench"]
    assert r["ocrbench"]["ocrbench_accuracy,none"] == sum(s["ocrbench_accuracy"]["score"] for s in ocr) / 1000
    assert r["mme"]["mme_percetion_score,none"] == pytest.approx(native["mme"]["perception"])


def _rec(task, uid, score, category=None, group=None, answers=("yes",), prediction="yes"):
    return {"uid": uid, "task": task, "prediction": prediction, "score": score, "category": category,
            "group": group, "answers": list(answers), "input": f"prompt {uid}", "doc": {"uid": uid}}


def test_mme_sums_acc_and_acc_plus_per_subtask_and_splits_cognition():
    ex = "existence"
    recs = [_rec("mme", "a1", 1.0, ex, f"{ex}/img1"), _rec("mme", "a2", 1.0, ex, f"{ex}/img1"),
            _rec("mme", "b1", 1.0, ex, f"{ex}/img2"), _rec("mme", "b2", 0.0, ex, f"{ex}/img2"),
            _rec("mme", "c1", 0.0, "code_reasoning", "code_reasoning/x"),
            _rec("mme", "c2", 0.0, "code_reasoning", "code_reasoning/x")]
    res, samples = lmms_results({"records": recs}, model="m", log_samples=True)
    # existence: acc 75 %, acc+ 50 % (one of two images fully right) -> 125; code_reasoning: 0
    assert res["results"]["mme"]["mme_percetion_score,none"] == pytest.approx(125.0)
    assert res["results"]["mme"]["mme_cognition_score,none"] == 0.0
    assert res["results"]["mme"]["mme_cognition_score_stderr,none"] == "N/A"
    assert samples["mme"][0]["mme_percetion_score"] == {"question_id": "img1", "category": "existence", "score": 1.0}
    assert "mme_cognition_score" in samples["mme"][4] and "mme_percetion_score" not in samples["mme"][4]


def test_ocrbench_reads_correct_over_1000_and_textvqa_submission_has_no_value():
    recs = [_rec("ocrbench", f"o{i}", float(i < 3), "Doc-oriented VQA") for i in range(5)]
    recs += [_rec("textvqa", "17", 1.0, prediction="Two Cats!")]
    res, samples = lmms_results({"records": recs}, model="m", log_samples=True)
    assert res["results"]["ocrbench"]["ocrbench_accuracy,none"] == 0.003
    assert res["results"]["textvqa_val"]["submission,none"] is None
    assert res["results"]["textvqa_val"]["exact_match_stderr,none"] == "N/A"  # one sample: no stderr
    assert samples["textvqa_val"][0]["submission"] == {"question_id": 17, "answer": "2 cats"}


def test_model_folder_names_and_refusals(tmp_path):
    assert sanitize_model_name("/models/Qwen/Qwen2-VL-2B-Instruct/") == "Qwen__Qwen2-VL-2B-Instruct"
    assert sanitize_model_name("bundled") == "bundled"
    recs = {"records": [_rec("docvqa", "d", 1.0)]}
    paths = write_lmms_eval(recs, tmp_path, model="m", log_samples=True, date="20261202_120000")
    assert [p.name for p in paths] == ["20261202_120000_results.json", "20261202_120000_samples_docvqa_val.jsonl"]
    with pytest.raises(OutputError, match="already exists"):
        write_lmms_eval(recs, tmp_path, model="m", log_samples=True, date="20261202_120000")
    with pytest.raises(ConfigError, match="log_samples"):
        lmms_results({"records": [{k: v for k, v in recs["records"][0].items() if k != "input"}]}, model="m",
                     log_samples=True)
    assert set(TASKS) == set(BENCHES)


def test_log_samples_without_output_path_is_a_one_line_error(capsys):
    assert main(["eval", "--model", "bundled", "--log-samples", "--limit", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--output-path" in err[0]
