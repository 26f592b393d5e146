"""Helpers shared by subcommands: the one model opener, argument types, and single-file outputs."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from torch import nn

from ..opener import ModelSource, open_model, resolve_model


def load_model(spec: str | ModelSource, placed: Any = None) -> tuple[nn.Module, Any]:
    """``(model, processor_or_tokenizer_or_None)`` for ``bundled``, a spikemllm checkpoint or a HF folder
    (:func:`spikemllm.opener.open_model`: strict, never downloads), placed as ``placed`` says
    (:func:`spikemllm.cli.options.placement_of`; None: the CPU, stored dtype)."""
    return open_model(spec, placed=placed)


def model_inputs(spec: str | ModelSource) -> list[Path]:
    """The folder(s) ``--model`` reads, for output checks (``tiny:<family>`` reads none)."""
    if isinstance(spec, str) and spec.startswith("tiny:"):
        return []
    return [resolve_model(spec).path]


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (``--limit -1`` or ``--batch-size 0`` is refused with exit code 2)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} is not allowed; give an integer >= 1")
    return v


def write_json_output(obj: Mapping[str, Any], path: str | os.PathLike, *, flag: str = "--json",
                      inputs: Iterable[str | os.PathLike | None] = ()) -> Path:
    """Write a result file atomically after checking that it replaces no input and nothing that is not ours."""
    from ..atomic import atomic_write_text
    from ..targets import check_target

    p = check_target(path, kind="file", inputs=inputs, overwrite=True, what=f"{flag} {path}")
    return atomic_write_text(p, json.dumps(obj, indent=1) + "\n")


__all__ = ["load_model", "model_inputs", "positive_int", "write_json_output"]
