"""``spikemllm`` command line: one small module per subcommand, each with ``add_parser`` and ``run``."""
from __future__ import annotations

import argparse
import importlib
import sys

from .options import HelpFormatter, style_parser

# Subcommand modules under spikemllm.cli; each defines add_parser(subparsers) and run(args) -> int.
SUBCOMMANDS = ("convert", "demo", "eval", "med", "energy", "hw")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

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
        p = style_parser(mod.add_parser(sub))  # one help style for all: defaults shown, plain text
        p.set_defaults(_run=mod.run)
    return ap


def main(argv: list[str] | None = None) -> int:
    from ..errors import SpikeMLLMError

    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (SpikeMLLMError, ValueError, FileExistsError, FileNotFoundError) as e:
        print(f"spikemllm {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
