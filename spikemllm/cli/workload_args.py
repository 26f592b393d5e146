"""The workload options that ``spikemllm energy`` and ``spikemllm hw`` share, and the model shape they name.

Why one place: both commands count a model by shape (:mod:`spikemllm.hardware.workload`); the same option must
mean the same thing, take the same values and read a model's config in the same way in both. Which shapes exist
(``--workload``) and how a family's config reads (``--hf-config``) are the family adapters' knowledge
(:mod:`spikemllm.models`); these options only pass the name or the config on.
"""
from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_workload_command", "add_workload_args", "model_shape"]


def add_workload_command(subparsers: argparse._SubParsersAction, name: str, doc: str | None, *, help: str,
                         group: str) -> tuple[argparse.ArgumentParser, argparse._ArgumentGroup]:
    """The subcommand ``name`` (its module docstring ``doc`` as description, usage examples kept as written) and
    its argument group ``group`` holding :func:`add_workload_args`; returns both for the command's own options."""
    p = subparsers.add_parser(name, help=help, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group(group)
    add_workload_args(g)
    return p, g


def add_workload_args(group: argparse._ArgumentGroup) -> None:
    """``--workload``/``--hf-config`` (which shape), ``--tv``/``--tt`` (timesteps), ``--output-tokens`` and
    ``--kv-bits``."""
    from ..models import PAPER_WORKLOAD, WORKLOADS

    group.add_argument("--workload", default=PAPER_WORKLOAD, choices=sorted(WORKLOADS), help="model shape to count")
    group.add_argument("--hf-config", default=None, metavar="PATH",
                       help="build the model shape from a model's config instead of --workload: 'bundled', a HF "
                            "model folder, a spikemllm checkpoint or a config.json")
    group.add_argument("--tv", type=float, default=3.0, help="vision timesteps (may be an average over layers)")
    group.add_argument("--tt", type=float, default=4.0, help="text timesteps (may be an average over layers)")
    group.add_argument("--output-tokens", type=int, default=128, help="generated tokens (the decode phase)")
    group.add_argument("--kv-bits", type=int, default=8, help="bits per KV-cache entry of the spiking model")


def model_shape(args: argparse.Namespace) -> Any:
    """The :class:`~spikemllm.models.shape.ModelShape` that ``--hf-config`` (read by its family's adapter) or
    ``--workload`` names."""
    from ..models import get_workload, shape_of_config

    if args.hf_config:
        from ..opener import open_config

        cfg = open_config(args.hf_config, what="--hf-config")  # 'bundled', a checkpoint, a HF folder or config.json
        return shape_of_config(cfg, name=str(args.hf_config))
    return get_workload(args.workload)
