"""``spikemllm med --model DIR|bundled --calib minibench:10 --budget 3.5 --out DIR``.

Measures MED (cosine curves per block and modality), costs and sensitivities, allocates Tv/Tt per block
under the budget, and writes ``med.json``, ``allocation.json``, ``config.json`` (a SpikeConfig for
``spikemllm convert --config``) and the plots ``med.{png,svg}`` and ``allocation.{png,svg}``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..msts.budget import REFERENCE_CALIB, TEXT_CALIB, UNIT
from .options import add_placement, placement_of

OUTPUTS = ("med.json", "allocation.json", "config.json", "med.png", "med.svg", "allocation.png", "allocation.svg")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("med", help="MED analysis and per-modality, per-layer timestep allocation (MSTS)",
                       description="Measure MED and sensitivities, then pick vision/text timesteps per block "
                                   "under an average-timestep budget.")
    p.add_argument("--model", required=True, help="'bundled' or a local model folder")
    p.add_argument("--calib", default=None,
                   help="calibration data, which also defines the budget unit: 'minibench[:N]' (N train items of "
                        "the mini-benchmark, needs an image processor) or 'random[:N]' (spikemllm's default "
                        f"calibration set); default {REFERENCE_CALIB} ({TEXT_CALIB} without an image processor)")
    p.add_argument("--budget", required=True, type=float,
                   help=f"average timesteps, e.g. 3.5, in the budget unit: {UNIT}")
    p.add_argument("--strategy", choices=("med", "search"), default="search",
                   help="'med': from the cosine curves only (the fast option: seconds); 'search': plans measured "
                        "against the float model on the calibration set (default; half a minute on the bundled model)")
    p.add_argument("--rounds", type=int, default=1, help="search: local re-planning rounds (default 1; on the "
                   "bundled model a second round measured 25 more plans and kept none)")
    p.add_argument("--weighting", choices=("macs", "tokens", "equal"), default="macs",
                   help="what the average is weighted by (default: MACs, i.e. token counts x layer cost)")
    p.add_argument("--levels", help="search: consecutive timesteps a unit may take, comma-separated "
                                    "(default: two either side of the budget)")
    p.add_argument("--config", help="base SpikeConfig JSON (default: TC-LIF, W4, RTN)")
    p.add_argument("--batch-size", type=int, default=5, help="calibration items per batch (default 5; the budget "
                                                                  "does not depend on it: padding is not priced)")
    p.add_argument("--seed", type=int, default=0, help="calibration seed (default 0)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the search runs many "
                   "small forward passes, and on a small model thread hand-offs cost more than they give, far more "
                   "on a busy machine)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a previous `med` run's outputs in --out (they are replaced whole, at the end)")
    add_placement(p, offload=True)
    return p


def run(args: argparse.Namespace) -> int:
    from ..config import SpikeConfig
    from ..msts import budget_range
    from ..msts.search import default_search_levels
    from ..msts.allocate import check_budget
    from ..runfolder import RunFolder
    from .common import model_inputs

    base = SpikeConfig.from_json(args.config) if args.config else SpikeConfig()
    placed = placement_of(args)  # a device this machine lacks: one line, before anything is loaded
    lo, hi = budget_range(base.coder, base.signed)
    check_budget(args.budget, base.coder, base.signed)  # fail before loading anything
    levels = None
    if args.strategy == "search":
        if args.levels:
            try:
                levels = [int(x) for x in args.levels.split(",") if x.strip()]
            except ValueError:
                raise ConfigError(f"--levels {args.levels!r} must be comma-separated integers in {lo}..{hi}") from None
        else:
            levels = default_search_levels(args.budget, base.coder, base.signed)
    t0 = time.time()
    # This run owns --out until it ends; its outputs replace the previous ones only once all are written.
    with RunFolder(args.out, command="med", config=vars(args), inputs=[*model_inputs(args.model), args.config],
                   overwrite=args.overwrite, known_outputs=OUTPUTS) as run:
        _med(args, base, levels, run.path, placed)
    print(f"[spikemllm] wrote {', '.join(OUTPUTS)} to {args.out} in {time.time() - t0:.1f}s")
    return 0


def _med(args: argparse.Namespace, base: Any, levels: list[int] | None, out: Path, placed: Any = None) -> None:
    """Load, measure, allocate and write every output into ``out`` (the run's staging folder)."""
    from ..msts import med, plan, search
    from ..msts.budget import calibration_set, default_calib_spec
    from ..msts.plots import plot_allocation, plot_med
    from ..msts.result import write_json
    from .common import load_model

    import torch

    torch.set_num_threads(max(1, args.threads))
    print(f"[spikemllm] loading {args.model}", flush=True)
    model, processor = load_model(args.model, placed)
    calib_spec = args.calib or default_calib_spec(processor)
    calib = calibration_set(calib_spec, model, processor, batch_size=args.batch_size, seed=args.seed)
    converted = getattr(model, "spike_config", None)
    if converted is not None:  # a spikemllm checkpoint: its own config is the base
        if args.config:
            raise ConfigError(f"--model {args.model} is already converted; drop --config (its own config is used)")
        base = converted
    print(f"[spikemllm] MED on {calib_spec} ({len(calib)} batches)"
          + (f", search over T={levels}" if levels else ""), flush=True)
    if args.strategy == "search":
        if converted is not None:
            raise ConfigError(f"--strategy search measures plans against the float model; --model {args.model} is "
                              "already converted: pass the float model, or use --strategy med")
        alloc, result = search(model, calib, args.budget, config=base, levels=levels, rounds=args.rounds,
                               weighting=args.weighting, progress=True)
    else:
        result = med(model, calib, config=None if converted is not None else base, progress=True)
        alloc = plan(result, args.budget, args.strategy, weighting=args.weighting)
    cfg = alloc.to_config(base)
    result.meta["calib"] = calib_spec
    result.save(out / "med.json")
    write_json(out / "allocation.json", {**alloc.to_dict(), "calib": calib_spec, "unit": UNIT})
    cfg.to_json(str(out / "config.json"))
    plot_med(result, out / "med")
    plot_allocation(alloc, result, out / "allocation")
    _print_summary(result, alloc, calib_spec)


def _print_summary(result: Any, alloc: Any, calib_spec: str) -> None:
    """One row per group in token-flow order. ``rest`` is every converted linear outside the blocks (the
    projector); vision-tower blocks and ``rest`` only ever see vision tokens, so their text cells are '-'."""
    fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
    print(f"{'block':<10} {'cos vis':>8} {'cos txt':>8} {'Tv':>3} {'Tt':>3}")
    for g in result.groups():
        c = result.cosine.get(g, {})
        t = alloc.timesteps.get(g, {})
        has = {m: result.macs.get(g, {}).get(m, 0) > 0 for m in ("vision", "text")}
        tv, tt = (t.get(m, "-") if has[m] else "-" for m in ("vision", "text"))
        print(f"{g:<10} {fmt(c.get('vision')):>8} {fmt(c.get('text')):>8} {tv:>3} {tt:>3}")
    unit = UNIT if alloc.weighting == "macs" else f"{alloc.weighting}-weighted average timesteps"
    print(f"budget {alloc.budget:g}, cost {alloc.cost:.4f} ({unit}, {calib_spec}), strategy {alloc.strategy}"
          + ("" if alloc.measured_kl is None else f", KL to FP {alloc.measured_kl:.3e}"))
