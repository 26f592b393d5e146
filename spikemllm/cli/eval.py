"""``spikemllm eval``: score a float or spiking model on benchmarks (the mini-benchmark or local real data)."""
from __future__ import annotations

import argparse
from typing import Any

from ..errors import CheckpointError
from .common import positive_int
from .options import add_placement, add_seed, apply_seed, placement_of


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("eval", help="evaluate a model (optionally converted with --config) on benchmarks",
                       description="Evaluate on TextVQA/DocVQA/OCRBench/ScienceQA/MME (generated mini-benchmark by "
                                   "default, or the real datasets from --data). Works under torchrun (gloo).")
    p.add_argument("--model", default="bundled", help="'bundled', a local HF model folder or a spikemllm checkpoint")
    p.add_argument("--bench", default="textvqa,docvqa,ocrbench,scienceqa,mme", help="comma-separated names")
    p.add_argument("--config", help="SpikeConfig JSON: convert before evaluating (omit: evaluate as loaded)")
    p.add_argument("--layout", default=None, metavar="FILE",
                   help="JSON/YAML file naming the vision tower, projector, language model, blocks and image-token "
                        "rule of a model no adapter knows (see spikemllm.models.layout)")
    p.add_argument("--mode", default=None, choices=["fused", "faithful", "fakequant"], help="override config.mode")
    p.add_argument("--data", help="root folder of the real datasets (one sub-folder per benchmark)")
    p.add_argument("--limit", type=positive_int, default=None, help="items per benchmark")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--skip-bad", action="store_true", help="skip data records that cannot be read (each is "
                   "reported; the count is in the result as meta.skipped_bad) instead of stopping at the first")
    p.add_argument("--max-new-tokens", type=int, default=12)
    p.add_argument("--json", default=None, help="write the result JSON here (spikemllm's own layout; atomically, "
                   "never over an input)")
    out = p.add_argument_group("lmms-eval layout (to diff against lmms-eval runs)")
    out.add_argument("--output-path", default=None, metavar="DIR",
                     help="write DIR/<model>/<date>_results.json with lmms-eval's keys and task names "
                          "(textvqa_val, docvqa_val, ocrbench, scienceqa_img, mme)")
    out.add_argument("--log-samples", action="store_true",
                     help="also write DIR/<model>/<date>_samples_<task>.jsonl, one line per item (needs "
                          "--output-path)")
    add_seed(p, "the generated mini-benchmark's items (ignored with --data) and torch")
    p.add_argument("--calib", default=None,
                   help="calibration set that defines the budget unit (MAC-weighted average timesteps over its "
                        "tokens): give the one `spikemllm med --calib` used (default: minibench:20, or random:8 "
                        "without an image processor, as med)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the bundled model is "
                   "tiny, and thread hand-offs cost more than they give, worse on a busy machine)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_placement(p, offload=True)
    return p


def _check_outputs(args: argparse.Namespace, inputs: list) -> None:
    """Refuse a --json or --output-path that is, holds or lies inside an input (or --json: not ours)."""
    from ..errors import OutputError
    from ..targets import check_target, overlap

    if args.json:
        check_target(args.json, kind="file", inputs=inputs, overwrite=True, what=f"--json {args.json}")
    hit = overlap(args.output_path, inputs) if args.output_path else None
    if hit is not None:
        raise OutputError(f"--output-path {args.output_path} {hit[1]} the input {hit[0]}; choose a folder outside it")


def run(args: argparse.Namespace) -> int:
    from ..bench.runner import format_table, run_benchmark
    from ..config import SpikeConfig
    from ..nn.spike_linear import set_mode
    from ..nn.stats import collect_stats
    from ..report.measure import cost_summary
    from ..spikify import convert
    from .common import load_model, model_inputs, write_json_output

    import torch

    if args.log_samples and not args.output_path:
        from ..errors import ConfigError

        raise ConfigError("--log-samples writes next to the results file: give --output-path DIR as well")
    import time

    start = time.perf_counter()
    placed = placement_of(args)  # a device this machine lacks: one line, before anything is loaded
    torch.set_num_threads(max(1, args.threads))
    apply_seed(args.seed)
    names = [b.strip() for b in args.bench.split(",") if b.strip()]
    inputs = [*model_inputs(args.model), args.config, args.data, args.layout]
    _check_outputs(args, inputs)  # before the run, not after it
    model, proc = load_model(args.model, placed)
    if args.layout:
        from ..models.layout import declare_layout

        declare_layout(model, args.layout)
    if proc is None:
        raise CheckpointError(f"{args.model} has no processor/tokenizer saved beside it; save one with the model")
    cfg = SpikeConfig.from_json(args.config) if args.config else None
    budget = None
    if cfg is not None or getattr(model, "spike_config", None) is not None:
        budget = _budget(model, proc, cfg, args.calib)  # priced before converting: one float pass
    if cfg is not None:
        from ..calibrate.offload import settle

        settle(convert(model, cfg, progress=not args.quiet))  # new layers go where accelerate runs their block
    if args.mode:
        set_mode(model, args.mode)
    spiking = getattr(model, "spike_config", None) is not None
    if spiking:
        with collect_stats(model) as stats:
            res = run_benchmark(model, proc, names, limit=args.limit, data=args.data, batch_size=args.batch_size,
                                max_new_tokens=args.max_new_tokens, progress=not args.quiet,
                                seed=args.seed, log_samples=args.log_samples, skip_bad=args.skip_bad)
        res["cost"] = cost_summary(stats)
        res["cost"]["budget"] = budget.to_dict()
    else:
        res = run_benchmark(model, proc, names, limit=args.limit, data=args.data, batch_size=args.batch_size,
                            max_new_tokens=args.max_new_tokens, progress=not args.quiet, seed=args.seed,
                            log_samples=args.log_samples, skip_bad=args.skip_bad)
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        print(format_table({args.model if cfg is None else f"{args.model} ({cfg.coder})": res}))
        if spiking:
            c = res["cost"]
            print(f"budget {budget.format()}")
            print(f"firing rate {c['firing_rate']:.3f}  ACs {c['acs'] / 1e6:.1f}M  MACs {c['macs'] / 1e6:.1f}M")
        if args.json:
            write_json_output(res, args.json, inputs=inputs)
            print(f"wrote {args.json}")
        if args.output_path:
            from ..bench.lmms_eval import write_lmms_eval
            from ..placement import input_device

            model_args = f"pretrained={args.model}" + (f",config={args.config}" if args.config else "")
            paths = write_lmms_eval(res, args.output_path, model=args.model, log_samples=args.log_samples,
                                    model_args=model_args, limit=args.limit, batch_size=args.batch_size,
                                    device=str(input_device(model)), seed=args.seed,
                                    start_time=start)
            print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _budget(model: Any, proc: Any, cfg: Any, calib_spec: str | None) -> Any:
    """The plan's budget in the one unit (:mod:`spikemllm.msts.budget`), on the same calibration set as med."""
    from ..msts.budget import calibration_set, default_calib_spec, model_budget

    spec = calib_spec or default_calib_spec(proc)
    return model_budget(model, calibration_set(spec, model, proc), cfg, spec)
