"""``spikemllm eval``: score a float or spiking model on benchmarks (the mini-benchmark or local real data)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("eval", help="evaluate a model (optionally converted with --config) on benchmarks",
                       description="Evaluate on TextVQA/DocVQA/OCRBench/ScienceQA/MME (generated mini-benchmark by "
                                   "default, or the real datasets from --data). Works under torchrun (gloo).")
    p.add_argument("--model", default="bundled", help="'bundled', a local HF model folder or a spikemllm checkpoint")
    p.add_argument("--bench", default="textvqa,docvqa,ocrbench,scienceqa,mme", help="comma-separated names")
    p.add_argument("--config", help="SpikeConfig JSON: convert before evaluating (omit: evaluate as loaded)")
    p.add_argument("--mode", default=None, choices=["fused", "faithful", "fakequant"], help="override config.mode")
    p.add_argument("--data", help="root folder of the real datasets (one sub-folder per benchmark)")
    p.add_argument("--limit", type=int, default=None, help="items per benchmark")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=12)
    p.add_argument("--json", default=None, help="write the result JSON here")
    p.add_argument("--calib", default=None,
                   help="calibration set that defines the budget unit (MAC-weighted average timesteps over its "
                        "tokens): give the one `spikemllm med --calib` used (default: minibench:20, or random:8 "
                        "without an image processor, as med)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the bundled model is "
                   "tiny, and thread hand-offs cost more than they give, worse on a busy machine)")
    p.add_argument("--quiet", action="store_true")
    return p


def run(args: argparse.Namespace) -> int:
    from ..bench.runner import format_table, run_benchmark
    from ..config import SpikeConfig
    from ..nn.spike_linear import set_mode
    from ..nn.stats import collect_stats
    from ..report.measure import cost_summary
    from ..spikify import convert
    from .common import load_model

    import torch

    torch.set_num_threads(max(1, args.threads))
    names = [b.strip() for b in args.bench.split(",") if b.strip()]
    model, proc = load_model(args.model)
    if proc is None:
        raise ValueError(f"{args.model} has no processor/tokenizer saved beside it; save one with the model")
    cfg = SpikeConfig.from_json(args.config) if args.config else None
    budget = None
    if cfg is not None or getattr(model, "spike_config", None) is not None:
        budget = _budget(model, proc, cfg, args.calib)  # priced before converting: one float pass
    if cfg is not None:
        convert(model, cfg, progress=not args.quiet)
    if args.mode:
        set_mode(model, args.mode)
    spiking = getattr(model, "spike_config", None) is not None
    if spiking:
        with collect_stats(model) as stats:
            res = run_benchmark(model, proc, names, limit=args.limit, data=args.data, batch_size=args.batch_size,
                                max_new_tokens=args.max_new_tokens, progress=not args.quiet)
        res["cost"] = cost_summary(stats)
        res["cost"]["budget"] = budget.to_dict()
    else:
        res = run_benchmark(model, proc, names, limit=args.limit, data=args.data, batch_size=args.batch_size,
                            max_new_tokens=args.max_new_tokens, progress=not args.quiet)
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        print(format_table({args.model if cfg is None else f"{args.model} ({cfg.coder})": res}))
        if spiking:
            c = res["cost"]
            print(f"budget {budget.format()}")
            print(f"firing rate {c['firing_rate']:.3f}  ACs {c['acs'] / 1e6:.1f}M  MACs {c['macs'] / 1e6:.1f}M")
        if args.json:
            from ..bench.runner import save_json

            save_json(res, Path(args.json))
            print(f"wrote {args.json}")
    return 0


def _budget(model: Any, proc: Any, cfg: Any, calib_spec: str | None) -> Any:
    """The plan's budget in the one unit (:mod:`spikemllm.msts.budget`), on the same calibration set as med."""
    from ..msts.budget import calibration_set, default_calib_spec, model_budget

    spec = calib_spec or default_calib_spec(proc)
    return model_budget(model, calibration_set(spec, model, proc), cfg, spec)
