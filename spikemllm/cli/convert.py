"""``spikemllm convert --model DIR --config cfg.json --out DIR``: convert and save, atomically."""
from __future__ import annotations

import argparse
import time

from ..config import SpikeConfig
from .options import add_placement, add_seed, apply_seed, placement_of, seeded_calibration


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("convert", help="convert a Hugging Face model into a spiking model and save it",
                       description="Convert a local Hugging Face model (or 'bundled') and save a spikemllm checkpoint.")
    p.add_argument("--model", required=True, help="'bundled' or a local model folder")
    p.add_argument("--config", help="SpikeConfig JSON file (default: TC-LIF, Tv/Tt=3/4, W4, RTN)")
    p.add_argument("--out", required=True, help="output folder (written atomically)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if it exists and is a spikemllm checkpoint (never an input folder)")
    p.add_argument("--layout", default=None, metavar="FILE",
                   help="JSON/YAML file naming the vision tower, projector, language model, blocks and image-token "
                        "rule of a model no adapter knows (see spikemllm.models.layout)")
    add_seed(p, "the default calibration set of methods that calibrate (smoothquant, gptq)")
    add_placement(p, offload=True)  # --device/--dtype/--offload/--max-memory (spikemllm.placement)
    return p


def run(args: argparse.Namespace) -> int:
    from ..io import save
    from ..spikify import convert
    from ..targets import check_target
    from .common import load_model, model_inputs

    cfg = SpikeConfig.from_json(args.config) if args.config else SpikeConfig()
    inputs = [*model_inputs(args.model), args.config, args.layout]
    # before loading anything: never write over an input or over a folder that is not a spikemllm checkpoint
    check_target(args.out, kind="checkpoint", inputs=inputs, overwrite=args.overwrite, what=f"--out {args.out}")
    t0 = time.time()
    print(f"[spikemllm] loading {args.model}", flush=True)
    model, proc = load_model(args.model, placement_of(args))
    if args.layout:
        from ..models.layout import declare_layout

        declare_layout(model, args.layout)
    print(f"[spikemllm] converting ({cfg.coder}, T={cfg.timesteps}, W{cfg.weight_bits}, method={cfg.method})",
          flush=True)
    apply_seed(args.seed)
    convert(model, cfg, seeded_calibration(model, cfg, args.seed), progress=True)
    from ..calibrate.offload import onload

    out = save(onload(model), args.out, overwrite=args.overwrite, tokenizer=proc, inputs=inputs)
    print(f"[spikemllm] saved {out} in {time.time() - t0:.1f}s")
    return 0
