"""Reliability probes of issue 15: the bad-input table, the SIGKILL fault injection and the concurrency runs.

    PYTHONPATH=$PWD python benchmarks/probe_reliability.py            # table + kills + two writers
    PYTHONPATH=$PWD python benchmarks/probe_reliability.py --demos    # also two real `spikemllm demo` runs

The probes are the ones tests/reliability runs (reliability_probes.py): each sets up a bad input or a fault
and checks exit code 2 / a typed error, one line naming the file, no traceback, nothing changed outside the
target. Prints markdown tables for benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "reliability"))


def probe_table(work: Path) -> tuple[int, int]:
    from reliability_harness import run_probe
    from reliability_inputs import make_inputs
    from reliability_probes import PROBES

    inp = make_inputs(work / "inputs")
    print("| # | area | probe | before (issue 15) | now | ok |")
    print("|---|---|---|---|---|---|")
    ok = 0
    for i, p in enumerate(PROBES, 1):
        o = run_probe(p, inp, work / f"p{i}")
        ok += o.ok
        got = o.got.replace("|", "\\|").replace(str(work), "$W")
        print(f"| {i} | {p.area} | {p.name} | {p.saw} | {got[:150]} | {'yes' if o.ok else 'NO'} |", flush=True)
    print(f"\nprobes tried {len(PROBES)}, ok {ok}\n")
    return len(PROBES), ok


def kills(work: Path, points: int) -> None:
    from reliability_kill import kill_campaign

    r = kill_campaign(work, points=points)
    print(f"SIGKILL during save(overwrite=True): {r['events']} file-system events in one save of "
          f"{r['save_seconds']} s, the rename that publishes the new folder is event {r['rename_in']}; "
          f"{r['tried']} kill points, {r['killed']} killed (event kills {r['event_kills']}); previous (or new) "
          f"checkpoint loaded bit-identically after {r['loaded_ok']}/{r['tried']}; restored from aside "
          f"{r['restored']}, removed leftovers {r['removed']}; temp folders left after the next save: "
          f"{r['leftover_after_next_save']}; kill points: {r['points']}")


def writers(work: Path) -> None:
    from reliability_concurrency import hammer_save_json, two_run_writers

    def fixed_tmp_save_json(result, path):  # the code before issue 15, for the side-by-side figure
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(path)

    e0, t0 = hammer_save_json(work / "json0" / "r.json", calls=2000, save_json=fixed_tmp_save_json)
    e, t = hammer_save_json(work / "json" / "r.json", calls=2000)
    print(f"2 threads x 2000 writes of one JSON + 1 reader: fixed '.tmp' name (before): {e0} errors, {t0} torn "
          f"reads; bench.runner.save_json (now): {e} errors, {t} torn reads")
    r = two_run_writers(work / "runs" / "run")
    print(f"two processes, one run folder: A exit {r['a_rc']}, B refused: {r['b_refused']} ({r['b_message']}); "
          f"outputs consistent (A's 3 files, run.json lists them): {r['consistent']}; leftovers beside the "
          f"folder: {r['leftovers']}")


def demos(work: Path) -> None:
    """Two real `spikemllm demo --limit 1` runs on one --out, the second started once the first holds it."""
    out = work / "demo"
    cmd = [sys.executable, "-m", "spikemllm.cli.main", "demo", "--limit", "1", "--quiet", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    a = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lock = work / ".demo.lock"
    t0 = time.time()
    while not lock.exists() and a.poll() is None and time.time() - t0 < 300:
        time.sleep(0.2)
    b = subprocess.run(cmd, capture_output=True, text=True, env=env)
    a.communicate()
    run = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else {}
    from spikemllm.atomic import sha256_file

    consistent = run.get("status") == "complete" and all(
        sha256_file(out / n) == f["sha256"] for n, f in run.get("files", {}).items())
    names = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    b_line = [ln for ln in b.stderr.splitlines() if "error" in ln][-1:] or ["-"]
    print(f"two `spikemllm demo --limit 1 --out same/`: first exit {a.returncode}, second exit {b.returncode} "
          f"({b_line[0]}); run.json status {run.get('status')}, {len(run.get('files', {}))} files, every SHA-256 "
          f"matches: {consistent}; folder: {names}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kill-points", type=int, default=24)
    ap.add_argument("--demos", action="store_true", help="also run two real demos on one --out (~1 min)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        probe_table(work / "probes")
        kills(work / "kill", args.kill_points)
        writers(work / "writers")
        if args.demos:
            demos(work / "demos")


if __name__ == "__main__":
    main()
