"""Two writers on one output: the run folder's lock refuses the second run (here: the test process) while the
first (a subprocess) holds it, and the folder ends up with exactly the first run's files; concurrent atomic
JSON writes never fail or tear. (Two real `spikemllm demo` runs: benchmarks/probe_reliability.py --demos.)"""
from __future__ import annotations

from reliability_concurrency import hammer_save_json, two_run_writers


def test_two_processes_on_one_run_folder(tmp_path):
    r = two_run_writers(tmp_path / "run")
    assert r["a_started"] and r["a_rc"] == 0
    assert r["b_refused"] and "in use by another spikemllm run" in r["b_message"], r
    assert r["b_message"].count("\n") == 0 and str(tmp_path / "run") in r["b_message"]
    assert r["consistent"], r
    assert r["leftovers"] == []  # no lock file, staging or aside folder beside it


def test_save_json_two_writers_and_a_reader(tmp_path):
    errors, torn = hammer_save_json(tmp_path / "r.json", calls=500)
    assert (errors, torn) == (0, 0)
