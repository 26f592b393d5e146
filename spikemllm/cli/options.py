"""What every subcommand's ``--help`` and ``--seed`` share, so no command explains itself differently.

* :class:`HelpFormatter` prints each option's default (``(default: 16)``) unless the help text already names
  it or the default carries no information (``None``, a ``store_true`` flag's ``False``), and keeps the line
  breaks of a description (the usage examples in ``energy``/``hw``).
* :func:`plain` turns a module docstring written for Sphinx (````spikemllm hw````) into plain terminal text.
* :func:`add_seed` / :func:`apply_seed`: one ``--seed`` for every command that draws random numbers (the
  mini-benchmark's items, calibration sets, random tiny models), seeding Python, NumPy and torch together.
* :func:`add_placement` / :func:`placement_of`: ``--device``, ``--dtype`` (and, where a model may be larger than
  memory, ``--offload`` and ``--max-memory``) for every command that loads a model, resolved by
  :mod:`spikemllm.placement`.
"""
from __future__ import annotations

import argparse
import random
import re
from typing import Any

__all__ = ["HelpFormatter", "plain", "add_seed", "apply_seed", "seeded_calibration", "style_parser", "add_placement",
           "placement_of", "add_verbosity", "verbosity"]

_RST_LITERAL = re.compile(r"``(.+?)``", flags=re.S)
_RST_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|obj):`~?([^`]+)`")


def plain(text: str | None) -> str | None:
    """Text without reStructuredText markup: ````x```` and ``:func:`x``` become ``x``."""
    if text is None:
        return None
    return _RST_ROLE.sub(r"\1", _RST_LITERAL.sub(r"\1", text))


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions keep their line breaks; every option that has a meaningful default shows it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = plain(action.help) or ""
        default = action.default
        if (default is None or default is False or default is argparse.SUPPRESS or not action.option_strings
                or isinstance(action, (argparse._HelpAction, argparse._VersionAction))):
            return text
        shown = " ".join(str(x) for x in default) if isinstance(default, (list, tuple)) else str(default)
        if "%(default)" in text or (re.search(r"\bdefault\b", text, flags=re.I) and shown.lower() in text.lower()):
            return text  # the help already says it in its own words
        shown = shown.replace("%", "%%")
        return f"{text} (default: {shown})" if text else f"(default: {shown})"


def style_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give ``parser`` the shared formatter and a plain-text description (works after creation: argparse
    builds its formatter from ``formatter_class`` each time help is printed)."""
    parser.formatter_class = HelpFormatter
    parser.description = plain(parser.description)
    for action in parser._actions:
        # argparse prints nothing for an option without help text, defaults included: give those a line.
        if action.help is None and action.option_strings and action.default not in (None, False,
                                                                                    argparse.SUPPRESS):
            action.help = "(default: %(default)s)"
    return parser


def add_seed(parser: argparse.ArgumentParser, what: str) -> argparse.Action:
    """``--seed N`` (default 0); ``what`` says what it draws, so the help is specific to the command."""
    return parser.add_argument("--seed", type=int, default=0,
                               help=f"random seed for {what} (Python, NumPy and torch are all seeded)")


def apply_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy (when installed) and torch (CPU and every CUDA device)."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    import torch

    torch.manual_seed(seed)  # also seeds every CUDA device


def seeded_calibration(model: Any, config: Any, seed: int) -> list[dict[str, Any]] | None:
    """The default calibration set drawn with ``seed`` when a method of ``config`` calibrates (smoothquant,
    gptq), else None. Seed 0 gives exactly the set :func:`spikemllm.convert` draws on its own."""
    from ..methods.base import get_method

    if not any(get_method(m).needs_calibration for m in config.methods):
        return None
    from ..calibrate import default_calibration
    from ..models import describe

    return default_calibration(describe(model), seed=seed)


def add_placement(parser: argparse.ArgumentParser, *, offload: bool = False) -> argparse._ArgumentGroup:
    """``--device`` and ``--dtype`` in a group of their own; with ``offload``, also ``--offload DIR`` and
    ``--max-memory`` (accelerate's ``device_map="auto"``: for models larger than memory)."""
    from ..placement import DEVICES, DTYPES

    g = parser.add_argument_group("placement (where the model runs)")
    g.add_argument("--device", choices=DEVICES, default="auto",
                   help="auto: CUDA if present (device LOCAL_RANK under torchrun), else MPS, else the CPU")
    g.add_argument("--dtype", choices=list(DTYPES), default="auto",
                   help="dtype of the model's float parts; auto: the dtype its weights are stored in (the integer "
                        "engine of a converted model keeps int8 codes and float32 scales)")
    if offload:
        g.add_argument("--offload", default=None, metavar="DIR",
                       help="folder for the weights that do not fit: the model is loaded with accelerate's "
                            "device_map='auto', the rest stays on disk there and each block is read while it runs")
        g.add_argument("--max-memory", default=None, metavar="SPEC",
                       help="memory each device may hold, e.g. 'cpu=2GiB' or '0=70GiB,cpu=100GiB' (GPU ids as "
                            "integers); the rest goes to --offload (default: what is free)")
    return g


def placement_of(args: argparse.Namespace) -> Any:
    """The :class:`spikemllm.placement.Placement` of parsed arguments (ConfigError, one line, when the device is
    absent, e.g. ``--device cuda`` on a machine without CUDA)."""
    from ..placement import placement

    return placement(getattr(args, "device", "auto"), getattr(args, "dtype", "auto"),
                     getattr(args, "offload", None), getattr(args, "max_memory", None))


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    """``-v/--verbose`` and ``-q/--quiet`` on a subcommand: how much of spikemllm's log to show (debug, info,
    warnings only). The command line applies them once, in :func:`spikemllm.cli.main.main`. A subcommand that
    already has ``--quiet`` (no progress bars) keeps it; it then also quiets the log."""
    have = {s for a in parser._actions for s in a.option_strings}
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug messages of the log")
    if "--quiet" not in have:
        parser.add_argument("-q", "--quiet", action="store_true", help="show only warnings and errors of the log")
    else:
        action = next(a for a in parser._actions if "--quiet" in a.option_strings)
        action.help = f"{action.help}; the log shows only warnings and errors"


def verbosity(args: argparse.Namespace) -> int:
    """``1`` (verbose), ``-1`` (quiet) or ``0``, for :func:`spikemllm.logs.configure`."""
    return 1 if getattr(args, "verbose", False) else -1 if getattr(args, "quiet", False) else 0
