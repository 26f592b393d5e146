"""``spikemllm convert --model DIR --config cfg.json --out DIR``: convert and save, atomically.

A Hugging Face folder is converted by streaming (:mod:`spikemllm.spikify.stream`): checked first (shards,
tensor names and shapes, memory), then built block by block, so the float model is never whole in memory.
``bundled`` and spikemllm checkpoints are loaded and converted in place.
"""
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
    add_placement(p, offload=True)  # --device/--dtype/--offload/--max-memory (spikemllm.placement)
    p.add_argument("--layout", default=None, metavar="FILE",
                   help="JSON/YAML file naming the vision tower, projector, language model, blocks and image-token "
                        "rule of a model no adapter knows (see spikemllm.models.layout)")
    if not any("--dtype" in a.option_strings for a in p._actions):  # the placement flags may define it
        p.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                       help="dtype of everything that is not a spiking layer (embeddings, norms, lm_head); 'auto' "
                            "keeps the checkpoint's. Weight codes stay int8 under any dtype")
    p.add_argument("--no-memory-check", action="store_true",
                   help="convert even when the memory estimate exceeds the memory available now")
    add_seed(p, "the default calibration set of methods that calibrate (smoothquant, gptq)")
    return p


def run(args: argparse.Namespace) -> int:
    from ..io import save
    from ..opener import processor_of, resolve_model
    from ..spikify import convert
    from ..spikify.stream import NeedsInPlace, convert_folder, plan
    from ..targets import check_target
    from .common import load_model, model_inputs

    cfg = SpikeConfig.from_json(args.config) if args.config else SpikeConfig()
    inputs = [*model_inputs(args.model), args.config, args.layout]
    # before loading anything: never write over an input or over a folder that is not a spikemllm checkpoint
    check_target(args.out, kind="checkpoint", inputs=inputs, overwrite=args.overwrite, what=f"--out {args.out}")
    t0 = time.time()
    placed = placement_of(args)  # a device this machine lacks is one line, before any work
    src = resolve_model(args.model)
    model = None
    # Streaming builds on the CPU, block by block; a GPU or accelerate's offload loads the model whole instead.
    if src.kind == "hf" and placed.device.type == "cpu" and not placed.dispatched:
        try:
            pl = plan(src.path, cfg, dtype=args.dtype, layout=args.layout)  # every check, before any work
        except NeedsInPlace as e:
            print(f"[spikemllm] {src.path}: {e}; converting in place instead of streaming", flush=True)
        else:
            print(f"[spikemllm] streaming {args.model} block by block ({pl.estimate.describe()})", flush=True)
            print(f"[spikemllm] converting ({cfg.coder}, T={cfg.timesteps}, W{cfg.weight_bits}, method={cfg.method})",
                  flush=True)
            apply_seed(args.seed)
            model = convert_folder(src.path, cfg, lambda m: seeded_calibration(m, cfg, args.seed), progress=True,
                                   memory_check=not args.no_memory_check, plan_=pl)
            proc = processor_of(src.path)
    if model is None:
        print(f"[spikemllm] loading {args.model} ({placed.describe()})", flush=True)
        model, proc = load_model(args.model, placed)
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
