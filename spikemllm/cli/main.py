"""``spikemllm`` command line: one small module per subcommand, each with ``add_parser`` and ``run``.

Edges, the same for every subcommand: ``-v/--verbose`` and ``-q/--quiet`` set the log level
(:mod:`spikemllm.logs`); an error the user can fix (:class:`spikemllm.errors.SpikeMLLMError`) is one line on
stderr and exit code 2; any other exception is a bug and shows its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import SpikeMLLMError
from ..logs import configure
from .options import HelpFormatter, add_verbosity, style_parser, verbosity

# Subcommand modules under spikemllm.cli; each defines add_parser(subparsers) and run(args) -> int.
SUBCOMMANDS = ("convert", "demo", "eval", "med", "energy", "hw")


def build_parser() -> argparse.ArgumentParser:
    from ..version import __version__

    ap = argparse.ArgumentParser(prog="spikemllm", description="Spike-driven multimodal LLMs (SpikeMLLM).",
                                 formatter_class=HelpFormatter)
    ap.add_argument("--version", action="version", version=f"spikemllm {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        try:
            mod = importlib.import_module(f"spikemllm.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"spikemllm.cli.{name}":
                continue  # not shipped in this build
            raise
        p = mod.add_parser(sub)
        add_verbosity(p)
        p = style_parser(p)  # one help style for all: defaults shown, plain text
        p.set_defaults(_run=mod.run)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure(verbosity(args))
    try:
        return int(args._run(args) or 0)
    except SpikeMLLMError as e:
        print(f"spikemllm {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
