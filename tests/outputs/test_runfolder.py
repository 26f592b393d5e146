"""Run folders (spikemllm.runfolder): published whole with run.json and the marker, or not at all; a folder
that is not ours, or is another command's, is refused; the lock is exclusive and leaves nothing behind."""
from __future__ import annotations

import hashlib
import json

import pytest

from spikemllm.atomic import TargetLock
from spikemllm.errors import OutputError
from spikemllm.runfolder import RunFolder, read_run


def _run(out, tag, **kw):
    with RunFolder(out, command="demo", config={"tag": tag, "fn": print}, overwrite=True, **kw) as run:
        (run.path / "results.json").write_text(tag)
        (run.path / "plots").mkdir()
        (run.path / "plots" / "a.svg").write_text(tag * 3)
    return out


def test_commit_publishes_outputs_with_run_json_and_marker(tmp_path):
    out = _run(tmp_path / "run", "one")
    doc = read_run(out)
    assert doc["status"] == "complete" and doc["command"] == "demo" and doc["config"] == {"tag": "one"}
    assert doc["files"] == {n: {"bytes": len(t), "sha256": hashlib.sha256(t.encode()).hexdigest()}
                            for n, t in {"results.json": "one", "plots/a.svg": "oneoneone"}.items()}
    assert json.loads((out / ".spikemllm-run").read_text())["command"] == "demo"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no lock, staging or aside folder


def test_a_failed_run_leaves_the_previous_outputs(tmp_path):
    out = _run(tmp_path / "run", "one")
    with pytest.raises(ZeroDivisionError):
        with RunFolder(out, command="demo", overwrite=True) as run:
            (run.path / "results.json").write_text("half")
            1 / 0
    assert (out / "results.json").read_text() == "one" and read_run(out)["config"]["tag"] == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    _run(out, "two")
    assert (out / "results.json").read_text() == "two"


def test_what_may_be_replaced(tmp_path):
    _run(tmp_path / "run", "one")
    with pytest.raises(OutputError, match="holds the outputs of a `spikemllm demo` run"):
        RunFolder(tmp_path / "run", command="med", overwrite=True).__enter__()
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        RunFolder(tmp_path / "run", command="demo").__enter__()
    (tmp_path / "run" / "notes.txt").write_text("mine")  # a user's file in our folder: not deleted either
    with pytest.raises(OutputError, match=r"also holds notes\.txt, which its run\.json does not list"):
        _run(tmp_path / "run", "two")
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "results.json").write_text("old")
    (legacy / "thesis.tex").write_text("mine")
    with pytest.raises(OutputError, match=r"not a spikemllm run folder .*thesis\.tex"):
        _run(legacy, "x", known_outputs=("results.json", "report.html"))
    (legacy / "thesis.tex").unlink()
    _run(legacy, "new", known_outputs=("results.json", "report.html"))  # an unmarked folder of our files only
    assert (legacy / "results.json").read_text() == "new"
    with pytest.raises(OutputError, match="lies inside the input"):
        _run(tmp_path / "run" / "sub", "x", inputs=[tmp_path / "run"])


def test_the_current_folder_is_never_a_target(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for target in (".", str(tmp_path.parent)):
        with pytest.raises(OutputError, match="is or contains the current folder"):
            _run(target, "x")
    assert list(tmp_path.iterdir()) == []


def test_lock_is_exclusive_and_removed(tmp_path):
    target = tmp_path / "ck"
    with TargetLock(target, "--out ck") as lock:
        assert lock.path.read_text().strip().isdigit()
        with pytest.raises(OutputError, match=r"--out ck is in use by another spikemllm run \(pid \d+"):
            TargetLock(target, "--out ck").acquire()
    assert list(tmp_path.iterdir()) == []
