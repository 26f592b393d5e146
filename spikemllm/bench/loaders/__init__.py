"""Readers of the five real benchmarks from local copies of their published layouts.

Nothing is downloaded: point ``load(name, path)`` at a folder holding the files as the dataset's Hugging
Face page (or, for OCRBench, its GitHub release) lays them out. A folder that does not match raises
:class:`LayoutError` showing the expected layout; a record that cannot be read raises a one-line
:class:`~spikemllm.errors.DataError` naming the file, the record and the problem (or, given a ``bad`` list,
is skipped and collected there).
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType

from ...errors import DataError
from ..example import Example
from . import docvqa, mme, ocrbench, scienceqa, textvqa
from .common import LayoutError

LOADERS: dict[str, ModuleType] = {"textvqa": textvqa, "docvqa": docvqa, "ocrbench": ocrbench,
                                  "scienceqa": scienceqa, "mme": mme}


def load(name: str, path: str | Path, split: str | None = None, limit: int | None = None,
         bad: list[DataError] | None = None) -> list[Example]:
    """Examples of benchmark ``name`` from ``path`` (default split: the one with public answers).

    ``bad``: skip records that cannot be read, appending their errors here (default: raise the first).
    """
    if name not in LOADERS:
        raise KeyError(f"no loader for {name!r}; known: {sorted(LOADERS)}")
    module = LOADERS[name]
    return module.load(path, split or module.DEFAULT_SPLIT, limit, bad)


def expected_layout(name: str) -> str:
    """The layout text shown in errors, for help messages."""
    return LOADERS[name].EXPECTED


__all__ = ["LOADERS", "LayoutError", "load", "expected_layout"]
