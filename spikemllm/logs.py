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


def configure(verbosity: int = 0) -> None:
    """CLI set-up: ``-1`` quiet (warnings), ``0`` info, ``1`` debug; one plain handler on stderr."""
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    log = logging.getLogger(ROOT)
    log.setLevel(level)
    if not any(getattr(h, "_spikemllm", False) for h in log.handlers):
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(message)s"))
        h._spikemllm = True  # type: ignore[attr-defined]
        log.addHandler(h)
        log.propagate = False
