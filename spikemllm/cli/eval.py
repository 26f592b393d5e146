"""``spikemllm eval``: score a float or spiking model on benchmarks (the mini-benchmark or local real data)."""
from __future__ import annotations

import argparse

from .common import positive_int


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("eval", help="evaluate a model (optionally converted with --config) on benchmarks",
                       description="Evaluate on TextVQA/DocVQA/OCRBench/ScienceQA/MME (generated mini-benchmark by "
                                   "default, or the real datasets from --data). Works under torchrun (gloo).")
    p.add_argument("--model", default="bundled", help="'bundled', a local HF model folder or a spikemllm checkpoint")
    p.add_argument("--bench", default="textvqa,docvqa,ocrbench,scienceqa,mme", help="comma-separated names")
    p.add_argument("--config", help="SpikeConfig JSON: convert before evaluating (omit: evaluate as loaded)")
    p.add_argument("--mode", default=None, choices=["fused", "faithful", "fakequant"], help="override config.mode")
    p.add_argument("--data", help="root folder of the real datasets (one sub-folder per benchmark)")
    p.add_argument("--limit", type=positive_int, default=None, help="items per benchmark")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--skip-bad", action="store_true", help="skip data records that cannot be read (each is "
                   "reported; the count is in the result as meta.skipped_bad) instead of stopping at the first")
    p.add_argument("--max-new-tokens", type=int, default=12)
    p.add_argument("--json", default=None, help="write the result JSON here (atomically; never over an input)")
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
    from .common import load_model, model_inputs, write_json_output

    import torch

    torch.set_num_threads(max(1, args.threads))
    names = [b.strip() for b in args.bench.split(",") if b.strip()]
    inputs = [*model_inputs(args.model), args.config, args.data]
    if args.json:  # refuse a bad --json before the run, not after it
        from ..targets import check_target

        check_target(args.json, kind="file", inputs=inputs, overwrite=True, what=f"--json {args.json}")
    model, proc = load_model(args.model)
    if proc is None:
        raise ValueError(f"{args.model} has no processor/tokenizer saved beside it; save one with the model")
    cfg = SpikeConfig.from_json(args.config) if args.config else None
    if cfg is not None:
        convert(model, cfg, progress=not args.quiet)
    if args.mode:
        set_mode(model, args.mode)
    spiking = getattr(model, "spike_config", None) is not None
    if spiking:
        with collect_stats(model) as stats:
            res = run_benchmark(model, proc, names, limit=args.limit, data=args.data, batch_size=args.batch_size,
                                max_new_tokens=args.max_new_tokens, progress=not args.quiet, skip_bad=args.skip_bad)
        res["cost"] = cost_summary(stats)
    else:
        res = run_benchmark(model, proc, names, limit=args.limit, data=args.data, batch_size=args.batch_size,
                            max_new_tokens=args.max_new_tokens, progress=not args.quiet, skip_bad=args.skip_bad)
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        print(format_table({args.model if cfg is None else f"{args.model} ({cfg.coder})": res}))
        if spiking:
            c = res["cost"]
            print(f"avg T {c['avg_T']:.2f}  firing rate {c['firing_rate']:.3f}  ACs {c['acs'] / 1e6:.1f}M  "
                  f"MACs {c['macs'] / 1e6:.1f}M")
        if args.json:
            write_json_output(res, args.json, inputs=inputs)
            print(f"wrote {args.json}")
    return 0
