"""The package logger: ``logging.getLogger("spikemllm")``; the library never prints.

Library code logs through :func:`get_logger`; applications choose what to show. The command line calls
:func:`configure` with ``--verbose`` / ``--quiet``; a program that imports spikemllm gets Python's defaults
(warnings and errors only) unless it configures logging itself.
"""
from __future__ import annotations

import logging
import sys

ROOT = "spikemllm"


def get_logger(name: str | None = None) -> logging.Logger:
    """``spikemllm`` or a child of it (pass ``__name__`` from a module of the package)."""
    if not name or name == ROOT:
        return logging.getLogger(ROOT)
    return logging.getLogger(name if name.startswith(ROOT + ".") else f"{ROOT}.{name}")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not the stream of the first call: a
    program (or a test harness, or tqdm) that swaps stderr later still gets the messages, and a closed old
    stream never makes logging fail."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):  # noqa: D401 - a property standing in for StreamHandler's attribute
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the current stderr always wins
        pass


def configure(verbosity: int = 0) -> None:
    """CLI set-up: ``-1`` quiet (warnings), ``0`` info, ``1`` debug; one plain handler on stderr."""
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    log = logging.getLogger(ROOT)
    log.setLevel(level)
    if not any(getattr(h, "_spikemllm", False) for h in log.handlers):
        h = _StderrHandler()
        h.setFormatter(logging.Formatter("%(message)s"))
        h._spikemllm = True  # type: ignore[attr-defined]
        log.addHandler(h)
        log.propagate = False
