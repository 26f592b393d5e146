"""SIGKILL fault injection into ``spikemllm.save(..., overwrite=True)``.

A worker subprocess imports spikemllm once, saves checkpoint A, then for each kill point forks a child that
overwrites A with checkpoint B and is killed with SIGKILL:

* at the k-th file-system event of the save (an audit hook counts every open, mkdir, chmod, scandir, rename,
  remove and rmdir; the kill happens before event k executes), for points spread evenly from the first event
  to the last, plus the rename that publishes the new folder (the old one is then aside, the target missing);
  and
* after random delays within the duration of a save (these land inside the safetensors write too; one may
  come too late when the machine is busy, so only the event kills are sure to kill).

After each kill the worker loads the target (which recovers what the kill left) and checks it is
bit-identical to A when the kill came before the rename that publishes B, to B after it (either for the timed
kills); then it saves again and checks that nothing but the target is left in the folder.
Run: ``python reliability_kill.py WORK POINTS`` (prints one JSON line), or call :func:`kill_campaign`.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

EVENTS = ("open", "os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.listdir", "os.scandir",
          "tempfile.mkdtemp", "shutil.rmtree", "os.truncate")


def kill_campaign(work: Path, points: int = 24, timeout: float = 300.0) -> dict:
    """Run the worker in a fresh interpreter; returns its summary (see :func:`_worker`)."""
    work.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [str(root), os.environ.get("PYTHONPATH", "")] if p),
           "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, __file__, str(work), str(points)], capture_output=True, text=True,
                       timeout=timeout, env=env)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        raise RuntimeError(f"kill worker failed (exit {r.returncode}): {r.stderr[-2000:]}")
    return json.loads(lines[-1])


def _state(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _child(model_b, target: Path, kill_at: int | None, count_file: Path | None) -> None:
    """In the forked child: arm the hook, overwrite the target with B, die at event ``kill_at``."""
    import spikemllm

    n = [0]
    rename_in = [0]

    def hook(event: str, args: tuple) -> None:
        if event not in EVENTS:
            return
        n[0] += 1
        if event == "os.rename" and len(args) > 1 and str(args[1]) == str(target):
            rename_in[0] = n[0]
        if kill_at is not None and n[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)
    spikemllm.save(model_b, target, overwrite=True)
    if count_file is not None:
        count_file.write_text(json.dumps({"events": n[0], "rename_in": rename_in[0]}))
    os._exit(0)


def _fork(model_b, target: Path, kill_at: int | None = None, count_file: Path | None = None,
          delay: float | None = None) -> int:
    """Run :func:`_child` in a fork; returns the signal that ended it (0: it finished)."""
    import time

    pid = os.fork()
    if pid == 0:
        try:
            _child(model_b, target, kill_at, count_file)
        finally:
            os._exit(3)
    if delay is not None:
        time.sleep(delay)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0


def _worker(work: Path, points: int) -> dict:
    import logging
    import random
    import shutil
    import time

    import torch

    import spikemllm

    torch.set_num_threads(1)
    models = []
    for seed in (0, 1):
        m, _ = spikemllm.tiny_model("qwen2", seed=seed)
        models.append(spikemllm.convert(m, spikemllm.SpikeConfig(timesteps=3 + seed), progress=False))
    folder = work / "t"
    target = folder / "ck"
    pristine = work / "pristine"
    spikemllm.save(models[0], pristine)
    state_a, state_b = _state(spikemllm.load(pristine)), _state(models[1])
    notes: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda rec: notes.append(rec.getMessage())  # type: ignore[method-assign]
    logging.getLogger("spikemllm").addHandler(handler)

    def reset() -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        shutil.copytree(pristine, target)

    reset()
    t0 = time.time()
    assert _fork(models[1], target, count_file=work / "count.json") == 0
    save_seconds = time.time() - t0
    count = json.loads((work / "count.json").read_text())
    n_events, rename_in = count["events"], count["rename_in"]
    n_timed = max(2, points // 6)
    n_event = points - n_timed
    # evenly spread, plus the one kill that lands between the two renames (old aside, new not yet in)
    event_points = sorted({round(1 + i * (n_events - 1) / max(1, n_event - 1)) for i in range(n_event)} | {rename_in})
    rng = random.Random(0)
    plan = [("event", k) for k in event_points]
    plan += [("timed", rng.uniform(0, 0.8 * save_seconds)) for _ in range(n_timed)]
    results = []
    for kind, at in plan:
        reset()
        notes.clear()
        sig = _fork(models[1], target, kill_at=at if kind == "event" else None,
                    delay=at if kind == "timed" else None)
        try:
            state = _state(spikemllm.load(target))
        except Exception as e:  # noqa: BLE001  (recorded: a failed trial)
            results.append({"kind": kind, "at": at, "signal": sig, "loaded": f"{type(e).__name__}: {e}"})
            continue
        which = "A" if _same(state, state_a) else "B" if _same(state, state_b) else "?"
        want = ("A" if at <= rename_in else "B") if kind == "event" else which if which != "?" else "A or B"
        recovery = list(notes)
        spikemllm.save(models[1], target, overwrite=True)  # the next save
        left = sorted(p.name for p in folder.iterdir() if p.name != "ck")
        results.append({"kind": kind, "at": at, "signal": sig, "loaded": which, "want": want, "notes": recovery,
                        "left_after_next_save": left})
    ok = [r for r in results if r["loaded"] == r.get("want") and not r.get("left_after_next_save")]
    return {"events": n_events, "rename_in": rename_in, "save_seconds": round(save_seconds, 3),
            "tried": len(results), "killed": sum(r["signal"] == signal.SIGKILL for r in results),
            "event_kills": sum(r["kind"] == "event" and r["signal"] == signal.SIGKILL for r in results),
            "loaded_ok": len(ok), "restored": sum(any("restored" in n for n in r.get("notes", [])) for r in results),
            "removed": sum(any("removed" in n for n in r.get("notes", [])) for r in results),
            "leftover_after_next_save": sum(bool(r.get("left_after_next_save")) for r in results),
            "points": [(r["kind"][0], r["at"] if r["kind"] == "event" else round(r["at"], 3)) for r in results],
            "failures": [r for r in results if r not in ok]}


if __name__ == "__main__":
    print(json.dumps(_worker(Path(sys.argv[1]), int(sys.argv[2]))))
