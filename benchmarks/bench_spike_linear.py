"""SpikeLinear against FP32 nn.Linear: fused and faithful paths, time ratios measured in one run.

    .venv/bin/python benchmarks/bench_spike_linear.py [--repeats 5] [--threads 2]

Prints one table (markdown). Figures are the median wall time of each path divided by FP32 nn.Linear's on the
same input. Interleaved repeats so that machine noise hits every path alike.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from spikemllm import SpikeLinear

SETTINGS = [("fused IF T=15", "if", 15, "fused"), ("fused TC-LIF T=3", "tc-lif", 3, "fused"),
            ("faithful IF T=15", "if", 15, "faithful"), ("faithful TC-LIF T=3", "tc-lif", 3, "faithful"),
            ("faithful TC-LIF T=4", "tc-lif", 4, "faithful")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, nargs="*", default=[1, 256, 1024])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("| tokens | in->out | FP32 ms | " + " | ".join(s[0] for s in SETTINGS) + " |")
    print("|---|---|---|" + "---|" * len(SETTINGS))
    for n in args.tokens:
        for k, o in [(2048, 2048), (2048, 5632)]:
            lin = torch.nn.Linear(k, o)
            mods = [SpikeLinear.from_linear(lin, coder=c, t_text=t, mode=m) for _, c, t, m in SETTINGS]
            x = torch.randn(n, k)
            fns = [lin] + mods
            times: list[list[float]] = [[] for _ in fns]
            with torch.inference_mode():
                for f in fns:
                    f(x)  # warm-up (weight caches, allocator)
                for _ in range(args.repeats):
                    for i, f in enumerate(fns):
                        t0 = time.perf_counter()
                        f(x)
                        times[i].append(time.perf_counter() - t0)
            med = [statistics.median(t) for t in times]
            ratios = " | ".join(f"{m / med[0]:.2f}x" for m in med[1:])
            print(f"| {n} | {k}->{o} | {med[0] * 1e3:.2f} | {ratios} |", flush=True)


if __name__ == "__main__":
    main()
