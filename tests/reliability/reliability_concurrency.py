"""Concurrent writers: many atomic writes of one result file against a reader, and two processes that want the
same run folder. Used by the tests and by benchmarks/probe_reliability.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path


def hammer_save_json(path: Path, calls: int = 1000, save_json=None) -> tuple[int, int]:
    """Two threads call ``save_json`` (default: ``bench.runner.save_json``) ``calls`` times each on ``path``
    while a reader parses it; returns (writer errors + files left beside it, torn reads). The old fixed
    ``.tmp`` name gave hundreds of both."""
    if save_json is None:
        from spikemllm.bench.runner import save_json

    path.parent.mkdir(parents=True, exist_ok=True)
    save_json({"writer": -1, "payload": []}, path)
    errors, torn = [0], [0]
    done = threading.Event()

    def write(k: int) -> None:
        for i in range(calls):
            try:
                save_json({"writer": k, "i": i, "payload": list(range(200))}, path)
            except OSError:
                errors[0] += 1

    def read() -> None:
        while not done.is_set():
            try:
                json.loads(path.read_text())
            except ValueError:
                torn[0] += 1

    threads = [threading.Thread(target=write, args=(k,)) for k in (0, 1)]
    reader = threading.Thread(target=read)
    reader.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader.join()
    leftovers = [p for p in path.parent.iterdir() if p.name != path.name]
    return errors[0] + len(leftovers), torn[0]


WRITER = r"""
import sys
from pathlib import Path
from spikemllm.runfolder import RunFolder
out = Path(sys.argv[1])
with RunFolder(out, command="demo", config={"tag": "A"}, overwrite=True) as run:
    print("started", flush=True)
    sys.stdin.readline()  # hold the folder until told to go on
    for name in ("results.json", "report.html", "scores.png"):
        (run.path / name).write_text("A")
"""


def two_run_writers(out: Path, timeout: float = 120.0) -> dict:
    """Process A takes ``out`` and holds it; meanwhile this process (B) tries to run on the same folder.

    Returns A's exit code, whether B was refused and with what message, and whether ``out`` then holds
    exactly A's files (with run.json listing them) and nothing is left beside it.
    """
    from spikemllm.errors import OutputError
    from spikemllm.runfolder import RunFolder

    out.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [str(Path(__file__).resolve().parents[2]),
                                                                   os.environ.get("PYTHONPATH", "")] if p)}
    a = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    assert a.stdout is not None and a.stdin is not None
    started = a.stdout.readline().strip() == "started"  # A owns the folder now
    b_message, b_wrote = "", False
    try:
        with RunFolder(out, command="demo", config={"tag": "B"}, overwrite=True) as run:
            (run.path / "results.json").write_text("B")
            b_wrote = True
    except OutputError as e:
        b_message = str(e)
    a.stdin.write("go\n")
    a.stdin.flush()
    a_rc = a.wait(timeout=timeout)
    run_doc = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else {}
    files = {p.name: p.read_text() for p in out.iterdir() if p.name not in ("run.json", ".spikemllm-run")} \
        if out.is_dir() else {}
    consistent = (set(files) == set(run_doc.get("files", {})) == {"results.json", "report.html", "scores.png"}
                  and set(files.values()) == {"A"} and run_doc.get("config", {}).get("tag") == "A"
                  and run_doc.get("status") == "complete")
    return {"a_started": started, "a_rc": a_rc, "b_refused": bool(b_message) and not b_wrote,
            "b_message": b_message, "consistent": consistent,
            "leftovers": sorted(p.name for p in out.parent.iterdir() if p != out)}
