"""One run owns its output folder: locked for its lifetime, published whole, described by ``run.json``.

    with RunFolder("runs/demo", command="demo", config=vars_of_args, inputs=[model_dir]) as run:
        save_json(results, run.path / "results.json")      # write every output under run.path
        ...
    # here runs/demo holds this run's complete outputs; on an exception or a kill, the previous ones

The run writes into a private staging folder beside the target; on success it adds ``run.json`` (status,
config, every file with its size and SHA-256) and the marker ``.spikemllm-run``, then swaps the staging folder
in (:func:`spikemllm.atomic.swap_in`). A second run on the same target is refused by the lock while the first
is alive; a run that fails or is interrupted leaves the previous complete outputs (or none), and the next run
on that target removes what the interrupted one left (:func:`spikemllm.atomic.recover_leftovers`).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from .atomic import TargetLock, atomic_write_text, recover_leftovers, sha256_file, staging_folder, swap_in
from .targets import RUN_FORMAT, RUN_MARKER, check_target

RUN_JSON = "run.json"
RUN_VERSION = 1



def jsonable(config: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-representable part of ``config`` (argparse namespaces carry functions; paths become text)."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        if k.startswith("_") or callable(v):
            continue
        if isinstance(v, os.PathLike):
            v = os.fspath(v)
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            v = repr(v)
        out[k] = v
    return out


class RunFolder:
    """The output folder of one command run (see the module doc).

    Args:
        target: the folder the user named (``--out``).
        command: the command writing it (``"demo"``, ``"med"``); a folder of another command is refused.
        config: what the run was asked to do (recorded in ``run.json``).
        inputs: paths the run reads; a target that is, contains or lies inside one is refused.
        overwrite: replace an existing run folder of this command (else FileExistsError).
        known_outputs: file names the command writes, so that a folder from before the marker existed,
            holding only those, is still recognised as ours.
    """

    def __init__(self, target: str | os.PathLike, *, command: str, config: Mapping[str, Any] | None = None,
                 inputs: Iterable[str | os.PathLike | None] = (), overwrite: bool = False,
                 known_outputs: Iterable[str] = (), what: str | None = None) -> None:
        self.target = Path(target)
        self.command = command
        self.config = jsonable(config or {})
        self.inputs = list(inputs)
        self.overwrite = overwrite
        self.known_outputs = tuple(known_outputs) + (RUN_JSON, RUN_MARKER)
        self.what = what or f"--out {self.target}"
        self._lock = TargetLock(self.target, self.what)
        self._staging: Path | None = None
        self._started = 0.0

    @property
    def path(self) -> Path:
        """Where the run writes its outputs until it is committed."""
        if self._staging is None:
            raise RuntimeError("RunFolder.path is only available inside its `with` block")
        return self._staging

    def _check(self) -> None:
        check_target(self.target, kind="run", inputs=self.inputs, overwrite=self.overwrite, what=self.what,
                     command=self.command, known_outputs=self.known_outputs)

    def __enter__(self) -> "RunFolder":
        self._check()  # fail fast, before taking the lock
        self._lock.acquire()
        try:
            recover_leftovers(self.target)
            self._check()  # again: another run may have finished in between
            self._staging = staging_folder(self.target)
            self._started = time.time()
            self._write_run_json("running", files={})
        except BaseException:
            self._abort()
            raise
        return self

    def _write_run_json(self, status: str, files: dict[str, Any]) -> None:
        from .version import __version__

        doc = {"format": RUN_FORMAT, "version": RUN_VERSION, "command": self.command, "status": status,
               "spikemllm": __version__, "pid": os.getpid(), "started": time.strftime(
                   "%Y-%m-%dT%H:%M:%S", time.localtime(self._started)),
               "seconds": round(time.time() - self._started, 1), "config": self.config, "files": files}
        atomic_write_text(self.path / RUN_JSON, json.dumps(doc, indent=1, sort_keys=True) + "\n")

    def commit(self) -> Path:
        """Record the file list, mark the folder as ours and publish it in place of the target."""
        files = {p.relative_to(self.path).as_posix(): {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
                 for p in sorted(self.path.rglob("*")) if p.is_file() and p.name not in (RUN_JSON, RUN_MARKER)}
        self._write_run_json("complete", files)
        atomic_write_text(self.path / RUN_MARKER,
                          json.dumps({"format": RUN_FORMAT, "version": RUN_VERSION, "command": self.command}) + "\n")
        swap_in(self.path, self.target)
        self._staging = None
        return self.target

    def _abort(self) -> None:
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
        self._lock.release()

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        try:
            if exc_type is None:
                self.commit()
        finally:
            self._abort()


def read_run(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``run.json`` of a run folder (status, config, files)."""
    return json.loads((Path(folder) / RUN_JSON).read_text(encoding="utf-8"))


__all__ = ["RUN_JSON", "RunFolder", "jsonable", "read_run"]
