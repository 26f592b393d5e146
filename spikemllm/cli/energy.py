"""``spikemllm energy``: FP16 against spiking energy per layer and modality, with and without memory traffic.

    spikemllm energy --workload qwen2-vl-7b --tv 3 --tt 4 --phase prefill      # expected counts from shapes
    spikemllm energy --model bundled --config spike.json                       # counts from a real run
    spikemllm energy --model tiny:qwen2_vl                                     # a random tiny model's run
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import CheckpointError
from .options import add_placement, add_seed, apply_seed, placement_of
from .workload_args import add_workload_command, model_shape

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..costs import TABLES

    p, src = add_workload_command(subparsers, "energy", __doc__, help="FP16 vs spiking energy (ops and memory traffic)",
                                  group="what to count (a workload by shape, or a converted model's real run)")
    src.add_argument("--model", default=None,
                     help="'bundled', a HF model folder, a spikemllm checkpoint or 'tiny:<family>': convert it "
                          "(a checkpoint is already converted) and count a real forward pass")
    src.add_argument("--config", default=None, help="SpikeConfig as JSON (file), used with --model")
    src.add_argument("--prompt", default="What is in the image?", help="prompt for the --model run")
    src.add_argument("--phase", default="prefill", choices=("prefill", "decode", "both"), help="workload phase")
    src.add_argument("--firing-rate", type=float, default=0.3, help="workload firing rate (both modalities)")
    add_seed(src, "the 'tiny:<family>' model's random weights and inputs")
    pr = p.add_argument_group("pricing")
    pr.add_argument("--table", default="45nm", choices=sorted(TABLES), help="energy table (process node)")
    pr.add_argument("--dense-op", default="mac_fp16", help="dense operation (mac_fp16, mac_fp32, mac_int8, ...)")
    pr.add_argument("--ac", default="ac_fp32", help="spiking accumulate: ac_fp32 (0.9 pJ convention) or int")
    pr.add_argument("--offchip", default="hbm2", help="off-chip memory (hbm2, dram)")
    pr.add_argument("--onchip", default="sram_32kb", help="on-chip memory (sram_8kb, sram_32kb, sram_1mb)")
    p.add_argument("--summary", action="store_true", help="totals only, no per-layer rows")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the rows and totals as JSON")
    add_placement(p)  # where the --model run computes
    p.set_defaults(func=run)
    return p


def _counts_from_model(args: argparse.Namespace) -> tuple[list, str]:
    """Convert a model and count one forward pass: 'tiny:<family>' (random tiny model with its own inputs),
    or anything :func:`spikemllm.opener.open_model` opens ('bundled', a spikemllm checkpoint, a HF folder),
    run on a generated image (when the model has an image processor) and ``--prompt``. Returns the counts
    and which SpikeConfig was counted."""
    import spikemllm

    from ..energy.run import count_model_run
    from ..errors import ConfigError
    from ..placement import input_device, place, to_device
    from .common import load_model

    cfg = spikemllm.SpikeConfig.from_json(args.config) if args.config else None
    placed = placement_of(args)
    if args.model.startswith("tiny:"):
        from ..models.tiny import tiny_model

        model, inputs = tiny_model(args.model.split(":", 1)[1], seed=args.seed)
        model = place(model, placed)
        return count_model_run(model, to_device(inputs, input_device(model)), cfg), \
            args.config or "default SpikeConfig"
    model, processor = load_model(args.model, placed)
    inputs = to_device(_model_inputs(args, processor), input_device(model))
    if getattr(model, "spike_config", None) is not None:
        if cfg is not None:
            raise ConfigError(f"--model {args.model} is already converted (a spikemllm checkpoint); drop --config: "
                              "its own config is what gets counted")
        return count_model_run(model, inputs), "the checkpoint's own SpikeConfig"
    return count_model_run(model, inputs, cfg), args.config or "default SpikeConfig"


def _model_inputs(args: argparse.Namespace, processor: Any) -> dict[str, Any]:
    if processor is None:
        raise CheckpointError(f"{args.model} has no processor or tokenizer saved beside it, so there is nothing to build "
                              "an input with; save one with the model, or count a 'tiny:<family>' model")
    if getattr(processor, "image_processor", None) is None:  # a text model: its tokenizer
        return dict(processor(args.prompt, return_tensors="pt"))
    from PIL import Image

    size = getattr(processor.image_processor, "crop_size", None) or {"height": 64, "width": 64}
    h, w = (size.get("height", 64), size.get("width", 64)) if isinstance(size, dict) else (64, 64)
    image = Image.new("RGB", (w, h), (120, 160, 200))
    text = f"{getattr(processor, 'image_token', '<image>')}\n{args.prompt}"
    return dict(processor(text=text, images=image, return_tensors="pt"))


def run(args: argparse.Namespace) -> int:
    from ..energy.counting import counts_from_workload
    from ..energy.report import EnergyOptions, energy_report
    from ..hardware.workload import Workload

    apply_seed(args.seed)
    try:
        if args.json:  # refuse a bad --json before counting, not after
            from ..targets import check_target
            from .common import model_inputs

            json_inputs = [*(model_inputs(args.model) if args.model else []), args.config]
            check_target(args.json, kind="file", inputs=json_inputs, overwrite=True, what=f"--json {args.json}")
        if args.model:
            counts, cfg_used = _counts_from_model(args)
            what = f"real run of {args.model} ({cfg_used})"
        else:
            w = Workload(model_shape(args), tv=args.tv, tt=args.tt, firing_rate_vision=args.firing_rate,
                         firing_rate_text=args.firing_rate, output_tokens=args.output_tokens, kv_bits=args.kv_bits)
            counts = counts_from_workload(w, args.phase)
            what = (f"workload {args.hf_config or args.workload} by shape, phase {args.phase}, "
                    f"Tv/Tt {args.tv:g}/{args.tt:g}, firing rate {args.firing_rate:g} (expected counts)")
        opts = EnergyOptions(table=args.table, dense_op=args.dense_op, spike_ac=args.ac, offchip=args.offchip,
                             onchip=args.onchip, kv_bits=args.kv_bits)
        rep = energy_report(counts, opts)
        text = rep.format(per_layer=not args.summary)
    except (ValueError, KeyError, OSError, RuntimeError) as e:
        print(f"spikemllm energy: {e}", file=sys.stderr)
        return 2
    print(f"Counting: {what}")
    print(text)
    if args.json:
        from ..atomic import atomic_write_text

        out: dict[str, Any] = {"what": what, "options": vars(opts), "totals": rep.totals,
                               "rows": [vars(r) for r in rep.rows]}
        atomic_write_text(args.json, json.dumps(out, indent=2))
    return 0
