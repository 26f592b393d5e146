"""What an output may replace: never an input, never a folder that spikemllm did not write.

:func:`check_target` is asked before anything is written (and again under the target's lock): it refuses a
target that is, contains or lies inside an input (the model folder, a config file, a data folder), and a
target that exists but is not recognisably a spikemllm output of the right kind:

* ``"checkpoint"``: a folder whose ``manifest.json`` says ``"format": "spikemllm"`` (what :func:`save` wrote);
* ``"run"``: a folder holding the run marker ``.spikemllm-run`` (what :class:`spikemllm.runfolder.RunFolder`
  wrote), or, for folders written before the marker existed, only files the command itself writes;
* ``"file"``: a single result file (``--json``): an existing one must hold a JSON object.

An empty folder is accepted everywhere: replacing it loses nothing. Messages name the path and what was found.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Literal

from .errors import OutputError, OutputExists

Kind = Literal["checkpoint", "run", "file"]
RUN_MARKER = ".spikemllm-run"
RUN_FORMAT = "spikemllm-run"


def _real(p: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(os.path.expanduser(os.fspath(p)))))


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def overlap(target: str | os.PathLike, inputs: Iterable[str | os.PathLike | None]) -> tuple[Path, str] | None:
    """The first input that ``target`` is, contains or lies inside (symlinks resolved), with how."""
    t = _real(target)
    for raw in inputs:
        if raw is None or str(raw) in ("", "bundled"):
            continue
        i = _real(raw)
        if not i.exists():
            continue
        if t == i:
            return i, "is"
        if _inside(i, t):
            return i, "contains"
        if _inside(t, i):
            return i, "lies inside"
    return None


def _listing(folder: Path, limit: int = 6) -> str:
    names = sorted(os.listdir(folder))
    shown = ", ".join(names[:limit]) + (f", ... ({len(names)} entries)" if len(names) > limit else "")
    return shown


def _json_object(path: Path) -> dict | None:
    """The JSON object in ``path``, or None when it is missing, unreadable or not an object."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def checkpoint_format(folder: Path) -> str | None:
    """The ``format`` its ``manifest.json`` declares (``"spikemllm"`` for ours), or None."""
    m = _json_object(folder / "manifest.json")
    return m.get("format") if m is not None else None


def run_marker(folder: Path) -> dict | None:
    """The run marker's content (``{"format": "spikemllm-run", "command": ...}``), or None."""
    m = _json_object(folder / RUN_MARKER)
    return m if m is not None and m.get("format") == RUN_FORMAT else None


def _listed(folder: Path, record: str) -> set[str] | None:
    """Top-level names of the files a manifest.json / run.json lists under "files" (None: unreadable)."""
    doc = _json_object(folder / record)
    files = doc.get("files") if doc is not None else None
    return {str(k).split("/")[0] for k in files} if isinstance(files, dict) else None


def _strangers(folder: Path, entries: list[str], record: str, own: tuple[str, ...]) -> list[str]:
    """Entries of an output folder that its record does not list: files a user put there, which a replacement
    would delete."""
    listed = _listed(folder, record)
    return sorted(e for e in entries if e not in own and (listed is None or e not in listed))


def check_target(target: str | os.PathLike, *, kind: Kind, inputs: Iterable[str | os.PathLike | None] = (),
                 overwrite: bool = False, what: str | None = None, command: str | None = None,
                 known_outputs: Iterable[str] = ()) -> Path:
    """Refuse an unsafe output target (see the module doc); returns it as a Path.

    ``what`` names the target in messages (default: the path); ``overwrite`` allows replacing an existing
    output of the right kind (FileExistsError without it); ``command`` and ``known_outputs`` describe a run
    folder: a marker of another command is refused, and a folder without a marker is accepted only when it
    holds nothing but ``known_outputs``.
    """
    t = Path(target)
    what = what or str(t)
    hit = overlap(t, inputs)
    if hit is not None:
        src, how = hit
        raise OutputError(f"{what} {how} the input {src}; writing there would change or delete the input: "
                          "choose an output outside it")
    if _inside(_real(os.getcwd()), _real(t)):
        raise OutputError(f"{what} is or contains the current folder ({os.getcwd()}); replacing it would pull the "
                          "ground from under this run: give a folder below it")
    if t.is_symlink():
        raise OutputError(f"{what} is a symbolic link (to {os.readlink(t)}); give the real folder or another path")
    if not t.exists():
        return t
    if kind == "file":
        if t.is_dir():
            raise OutputError(f"{what} is a folder; give a file name for the JSON result")
        if _json_object(t) is None:
            raise OutputError(f"{what} exists and is not a spikemllm result (not a JSON object); refusing to "
                              "replace it: choose another file or remove it yourself")
        return t
    if not t.is_dir():
        raise OutputError(f"{what} is a file, not a folder; refusing to replace it: choose another path")
    entries = os.listdir(t)
    if not entries:
        return t
    if kind == "checkpoint":
        fmt = checkpoint_format(t)
        if fmt != "spikemllm":
            found = "a manifest.json of another format" if (t / "manifest.json").is_file() else "no manifest.json"
            raise OutputError(f"{what} exists and is not a spikemllm checkpoint ({found}; it holds {_listing(t)}); "
                              "refusing to replace it: choose another folder or remove it yourself")
        extra = _strangers(t, entries, "manifest.json", ("manifest.json",))
        if extra:
            raise OutputError(f"{what} is a spikemllm checkpoint but also holds {', '.join(extra[:6])}, which its "
                              "manifest does not list; refusing to delete them: move them out or choose another folder")
        desc = "a spikemllm checkpoint"
    else:
        marker = run_marker(t)
        if marker is not None:
            owner = marker.get("command")
            if command is not None and owner not in (None, command):
                raise OutputError(f"{what} holds the outputs of a `spikemllm {owner}` run; refusing to replace "
                                  f"them with a `{command}` run: choose another folder")
            extra = _strangers(t, entries, "run.json", ("run.json", RUN_MARKER))
            if extra:
                raise OutputError(f"{what} is a spikemllm run folder but also holds {', '.join(extra[:6])}, which its "
                                  "run.json does not list; refusing to delete them: move them out or choose another "
                                  "folder")
        else:
            known = set(known_outputs)
            foreign = sorted(set(entries) - known)
            if foreign or not known:
                raise OutputError(f"{what} exists and is not a spikemllm run folder (no {RUN_MARKER} marker; it "
                                  f"holds {_listing(t)}); refusing to replace it: choose another folder or remove "
                                  "it yourself")
        desc = f"the outputs of a previous `spikemllm {command}` run" if command else "a previous run's outputs"
    if not overwrite:
        raise OutputExists(f"{what} exists; pass --overwrite (Python: overwrite=True) to replace it ({desc}), "
                           "or choose another folder")
    return t


__all__ = ["RUN_FORMAT", "RUN_MARKER", "check_target", "checkpoint_format", "overlap", "run_marker"]
