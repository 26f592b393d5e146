"""``spikemllm hw``: the accelerator-versus-GPU report for a workload, every assumption printed.

    spikemllm hw --workload qwen2-vl-7b --tv 3 --tt 4
    spikemllm hw --workload qwen2-vl-7b --gpu h200 --gpu-power 184 --plot out/hw_sweep
"""
from __future__ import annotations

import argparse
import sys

from .workload_args import add_workload_command, model_shape

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..hardware.gpu import GPUS

    p, w = add_workload_command(subparsers, "hw", __doc__, help="accelerator vs FP16 GPU report (tokens/s, W, ratios)",
                                group="workload")
    w.add_argument("--firing-rate", type=float, default=None, help="firing rate of both modalities")
    w.add_argument("--firing-rate-vision", type=float, default=0.3)
    w.add_argument("--firing-rate-text", type=float, default=0.3)
    w.add_argument("--image-size", type=int, default=448)
    w.add_argument("--images", type=int, default=1)
    w.add_argument("--prompt-tokens", type=int, default=64, help="text tokens of the prompt")
    w.add_argument("--weight-bits", type=int, default=4)
    a = p.add_argument_group("accelerator")
    a.add_argument("--rows", type=int, default=128, help="PEs")
    a.add_argument("--lanes", type=int, default=128, help="spike lanes per PE")
    a.add_argument("--chunks", type=int, default=8, help="weight chunks per PE")
    a.add_argument("--clock-mhz", type=float, default=1000.0)
    a.add_argument("--hbm-gbps", type=float, default=2000.0, help="HBM bandwidth, GB/s")
    a.add_argument("--sram-mib", type=float, nargs=3, default=(8.0, 8.0, 2.0), metavar=("W", "ACT", "ACC"),
                   help="weight, activation and accumulator SRAM in MiB")
    a.add_argument("--static-w", type=float, default=0.5, help="static (leakage) power, W")
    a.add_argument("--table", default="28nm", help="energy table (28nm, 45nm)")
    a.add_argument("--no-skip", action="store_true", help="disable zero-chunk skipping")
    g = p.add_argument_group("GPU")
    g.add_argument("--gpu", default="a800", choices=sorted(GPUS))
    g.add_argument("--gpu-power", type=float, default=None, help="GPU watts (default: TDP; the paper measured 184)")
    g.add_argument("--gpu-bw-eff", type=float, default=1.0, help="fraction of peak HBM bandwidth reached")
    g.add_argument("--gpu-compute-eff", type=float, default=1.0, help="fraction of peak FP16 FLOPs reached")
    p.add_argument("--plot", default=None, metavar="PREFIX", help="also write PREFIX.png/.svg ratio sweeps")
    p.set_defaults(func=run)
    return p


def build(args: argparse.Namespace):
    """(Workload, AcceleratorConfig, GPUSpec, gpu keyword arguments) from parsed arguments."""
    from ..hardware.accel_model import MiB, AcceleratorConfig
    from ..hardware.gpu import get_gpu
    from ..hardware.workload import Workload

    frv = args.firing_rate if args.firing_rate is not None else args.firing_rate_vision
    frt = args.firing_rate if args.firing_rate is not None else args.firing_rate_text
    w = Workload(model_shape(args), image_size=args.image_size, images=args.images,
                 prompt_text_tokens=args.prompt_tokens, output_tokens=args.output_tokens, tv=args.tv, tt=args.tt,
                 firing_rate_vision=frv, firing_rate_text=frt, weight_bits=args.weight_bits, kv_bits=args.kv_bits)
    sw, sa, sc = args.sram_mib
    cfg = AcceleratorConfig(rows=args.rows, lanes=args.lanes, chunks=args.chunks, clock_hz=args.clock_mhz * 1e6,
                            hbm_bandwidth=args.hbm_gbps * 1e9, weight_sram_bytes=int(sw * MiB),
                            act_sram_bytes=int(sa * MiB), acc_sram_bytes=int(sc * MiB),
                            static_power_w=args.static_w, table=args.table, skip_zero_chunks=not args.no_skip)
    gpu = {"gpu_power_w": args.gpu_power, "gpu_compute_efficiency": args.gpu_compute_eff,
           "gpu_bandwidth_efficiency": args.gpu_bw_eff}
    return w, cfg, get_gpu(args.gpu), gpu


def run(args: argparse.Namespace) -> int:
    from ..hardware.report import compare, format_comparison

    try:
        w, cfg, spec, gpu = build(args)
    except (ValueError, KeyError, OSError) as e:
        print(f"spikemllm hw: {e}", file=sys.stderr)
        return 2
    note = ""
    if args.gpu_bw_eff != 1.0 or args.gpu_compute_eff != 1.0:
        note = f"bandwidth {args.gpu_bw_eff:g}, compute {args.gpu_compute_eff:g} of peak"
    print(format_comparison(compare(w, cfg, spec, **gpu), gpu_efficiency_note=note))
    if args.plot:
        from ..hardware.report_plot import plot_sweeps, sweep

        by_t, by_rate = sweep(w, cfg, spec, **gpu)
        paths = plot_sweeps(by_t, by_rate, args.plot, title=f"{w.model.name}: spike accelerator vs {spec.name} FP16")
        print("\nwrote " + ", ".join(str(p) for p in paths))
    return 0
