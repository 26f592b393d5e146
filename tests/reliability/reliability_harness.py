"""How a reliability probe runs and what it must see (the probes themselves: reliability_probes.py).

For a refused input: exit code 2 (or a typed :class:`SpikeMLLMError` in Python), exactly one error line that
names the offending file or folder, no traceback, and no file created, changed or removed anywhere under the
probe's folder or the shared inputs.
"""
from __future__ import annotations

import hashlib
import io
import shutil
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from reliability_inputs import Inputs


@dataclass
class Outcome:
    ok: bool
    got: str


@dataclass
class Probe:
    name: str
    area: str       # the heading: overwrite, model, atomic, concurrency, data, manifest, minor
    saw: str        # what the issue saw before
    run: Callable[[Inputs, Path], Outcome]


def snapshot(*roots: Path) -> dict[str, Any]:
    """Every file (size + SHA-256) and folder under ``roots``: to prove nothing outside a target changed."""
    snap: dict[str, Any] = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            key = str(p)
            snap[key] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return snap


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``spikemllm ARGV`` in process: (exit code, stdout, stderr); argparse's SystemExit becomes the code."""
    from spikemllm.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = int(e.code or 0)
    return rc, out.getvalue(), err.getvalue()


def _error_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("spikemllm ")]


def refused_cli(argv: list[str], names: str | Path, inp: Inputs, work: Path) -> Outcome:
    """Exit 2, one error line naming ``names``, no traceback, nothing changed under ``work`` or the inputs."""
    before = snapshot(work, inp.root)
    rc, _, err = run_cli([str(a) for a in argv])
    lines = _error_lines(err)
    line = lines[-1] if lines else (err.strip().splitlines() or ["(no message)"])[-1]
    problems = []
    if rc != 2:
        problems.append(f"exit {rc}")
    if len(lines) != 1:
        problems.append(f"{len(lines)} error lines")
    if "Traceback" in err:
        problems.append("traceback")
    if str(names) not in line:
        problems.append(f"message does not name {names}")
    if snapshot(work, inp.root) != before:
        problems.append("files changed")
    return Outcome(not problems, f"exit {rc}: {line}" + (f"  [{'; '.join(problems)}]" if problems else ""))


def refused_call(fn: Callable[[], Any], names: str | Path, inp: Inputs, work: Path,
                 error: str = "SpikeMLLMError") -> Outcome:
    """``fn()`` raises a one-line SpikeMLLMError (subclass) naming ``names``; nothing changed."""
    import spikemllm.errors as errors

    want = getattr(errors, error)
    before = snapshot(work, inp.root)
    try:
        fn()
    except want as e:
        msg = str(e)
        problems = [p for p, bad in (("several lines", "\n" in msg), (f"does not name {names}", str(names) not in msg),
                                     ("files changed", snapshot(work, inp.root) != before)) if bad]
        return Outcome(not problems, f"{type(e).__name__}: {msg}" + (f"  [{'; '.join(problems)}]" if problems else ""))
    except Exception as e:  # noqa: BLE001  (any other type is what the probe looks for)
        return Outcome(False, f"untyped {type(e).__name__}: {' '.join(str(e).split())[:160]}")
    return Outcome(False, "no error")


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def converted_tiny():
    from reliability_inputs import tiny_vlm

    import spikemllm

    model, _ = tiny_vlm()
    return spikemllm.convert(model, spikemllm.SpikeConfig(), progress=False)


def run_probe(probe: Probe, inp: Inputs, work: Path) -> Outcome:
    """Run one probe in its own empty folder ``work``; an unexpected exception is a failed probe."""
    work.mkdir(parents=True, exist_ok=True)
    try:
        return probe.run(inp, work)
    except Exception as e:  # noqa: BLE001
        tb = traceback.extract_tb(e.__traceback__)[-1]
        return Outcome(False, f"{type(e).__name__} at {Path(tb.filename).name}:{tb.lineno}: {str(e)[:160]}")
