"""The Qwen2-VL-7B-shaped accelerator-vs-GPU report, its sweeps over Tv/Tt and firing rate, and RTL-vs-model cycles.

    .venv/bin/python benchmarks/bench_hw_report.py [--out benchmarks/figures/hw_ratio_sweep] [--gpu a800]

Prints: (1) cycle counts of random tiles from the Amaranth RTL simulation against the cycle model's tile rule;
(2) the full report at Tv/Tt = 3/4 (every assumption printed); (3) the same against the paper's measured A800
operating point (184 W, 43.5 tok/s = the roofline at a third of its bandwidth); (4) the sweep tables; and writes the
sweep plot as PNG and SVG.
"""
from __future__ import annotations

import argparse

import numpy as np

from spikemllm.hardware.accel_model import AcceleratorConfig, issue_cycles, tile_cycles
from spikemllm.hardware.gpu import PAPER_A800_POWER_W, PAPER_A800_TOKENS_PER_S, get_gpu, run_gpu
from spikemllm.hardware.report import compare, format_comparison
from spikemllm.hardware.report_plot import plot_sweeps, sweep
from spikemllm.hardware.tile_reference import nonzero_chunks_per_step, random_ternary_spikes
from spikemllm.hardware.workload import Workload
from spikemllm.models.qwen2_vl import qwen2_vl_7b


def rtl_vs_model() -> None:
    try:
        from spikemllm.hardware.rtl_sim import simulate_tile
    except ImportError:
        print("(amaranth not installed: RTL cycle check skipped)")
        return
    print(f"{'tile rows x lanes x chunks':<28}{'tokens':>7}{'sum T':>7}{'skip':>6}{'RTL cycles':>12}{'model':>8}"
          f"{'equal':>7}")
    rng = np.random.default_rng(2026)
    for rows, lanes, chunks in ((4, 4, 1), (4, 4, 4), (8, 8, 2), (16, 8, 4)):
        for skip in (False, True):
            cols = lanes * chunks
            W = rng.integers(-8, 8, size=(rows, cols))
            Ts = rng.integers(1, 5, size=8)
            spikes = [random_ternary_spikes(rng, int(T), cols, 0.1) for T in Ts]
            run = simulate_tile(W, spikes, lanes=lanes, skip_zero_chunks=skip)
            per_tok = [issue_cycles([len(c) for c in nonzero_chunks_per_step(s, lanes)], chunks, skip) for s in spikes]
            model = tile_cycles(per_tok, chunks, latency=1, double_buffered=False)
            print(f"{f'{rows} x {lanes} x {chunks}':<28}{len(spikes):>7}{int(Ts.sum()):>7}{str(skip):>6}"
                  f"{run.total_cycles:>12}{model:>8}{str(run.total_cycles == model):>7}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="benchmarks/figures/hw_ratio_sweep")
    ap.add_argument("--gpu", default="a800")
    a = ap.parse_args()
    print("== RTL tile cycles against the model's tile rule (firing rate 0.1, T in 1..4) ==")
    rtl_vs_model()
    w = Workload(qwen2_vl_7b(), tv=3, tt=4)
    cfg = AcceleratorConfig()
    spec = get_gpu(a.gpu)
    print("\n== Qwen2-VL-7B shape, Tv/Tt 3/4, against the GPU's ideal roofline at TDP ==")
    print(format_comparison(compare(w, cfg, spec)))
    ideal = run_gpu(w, spec).decode_tokens_per_s
    eff = min(1.0, PAPER_A800_TOKENS_PER_S / ideal)
    print(f"\n== The same against the paper's A800 operating point: {PAPER_A800_POWER_W:g} W and bandwidth efficiency "
          f"{eff:.3f} (43.5 tok/s) ==")
    c = compare(w, cfg, spec, gpu_power_w=PAPER_A800_POWER_W, gpu_bandwidth_efficiency=eff)
    print(f"accelerator {c.accel.decode_tokens_per_s:.1f} tok/s, {c.accel.decode.chip_power_w:.2f} W chip / "
          f"{c.accel.decode.system_power_w:.2f} W with HBM;  GPU {c.gpu.decode_tokens_per_s:.1f} tok/s, "
          f"{c.gpu.power_w:g} W")
    print(f"throughput {c.throughput_ratio:.2f}x; power {c.power_ratio(False):.1f}x chip, {c.power_ratio(True):.1f}x "
          f"with HBM; energy/token {c.energy_per_token_ratio(False):.1f}x chip, "
          f"{c.energy_per_token_ratio(True):.1f}x with HBM")
    print("\n== Sweeps (GPU ideal roofline at TDP) ==")
    by_t, by_rate = sweep(w, cfg, spec)
    keys = ("accel_tok_s", "gpu_tok_s", "accel_chip_w", "accel_system_w", "throughput", "end_to_end", "power_chip",
            "power_hbm", "energy_hbm")
    print(f"{'Tv/Tt':<8}{'rate':>6}" + "".join(f"{k:>15}" for k in keys))
    for r in by_t + by_rate:
        print(f"{r['tv']:g}/{r['tt']:g}".ljust(8) + f"{r['firing_rate']:>6.2f}" + "".join(f"{r[k]:>15.3f}" for k in keys))
    paths = plot_sweeps(by_t, by_rate, a.out, title=f"Qwen2-VL-7B shape: spike accelerator vs {spec.name} FP16 "
                                                    f"(roofline, TDP)")
    print("\nwrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
