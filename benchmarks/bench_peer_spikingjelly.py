"""Peer comparison: SpikingJelly 2.0's ann2snn Qwen2 recipe against spikemllm on the same tiny Qwen2 and input.

    .venv/bin/python benchmarks/bench_peer_spikingjelly.py [--repeats 3] [--threads 1]

Model and input: the tiny Qwen2 of bench_convert.py (hidden 256, 4 layers, random weights), 2 x 64 tokens.
Fidelity is measured against the FP model's logits on that input: cosine over all logits, and top-1 agreement
(share of positions whose argmax token equals FP's). Time is the median forward CPU time (one torch thread)
over FP's.

SpikingJelly: ``calibrate_qwen2_snn`` on the evaluation input itself (oracle calibration: the best case for the
peer), then ``ModuleConverter(Qwen2SNNRecipe(calibration, config)).convert(model)``, default ``signed_if``
encoding. ``calibration_levels`` must be <= T; both its default (16, capped at T) and ``levels = T`` are run. The
peer keeps float weights; it quantizes the embedding, Q, K, V and the MLP intermediate (per-channel static scales,
signed IF, T steps) and runs its linear layers on real-valued temporal sequences.

spikemllm: per-token dynamic activation codes at every Linear input (fully spike-driven linear layers), RTN
weights at **8 bits per channel** (spikemllm has no float-weight SpikeLinear; 8-bit weights are the closest),
dense (float) attention or spiking attention (Q, K, V and P as spikes). Time is faithful mode (real spike steps);
fused mode gives the same logits bit for bit.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from typing import Any, Callable

import torch

import spikemllm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_convert import tiny_qwen2  # noqa: E402

OURS = [("TC-LIF", "tc-lif", 3), ("TC-LIF", "tc-lif", 4), ("TC-LIF", "tc-lif", 5), ("IF", "if", 7), ("IF", "if", 15)]
PEER_T = [32, 16, 8, 4]


def _median_time(fn: Callable[[], Any], repeats: int) -> float:
    """Median CPU time of the calling thread (one torch thread: the work itself, robust on a shared machine)."""
    ts = []
    for _ in range(repeats):
        t0 = time.thread_time()
        fn()
        ts.append(time.thread_time() - t0)
    return statistics.median(ts)


def fidelity(out: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    cos = torch.nn.functional.cosine_similarity(out.double().flatten(), ref.double().flatten(), dim=0)
    top1 = (out.argmax(-1) == ref.argmax(-1)).float().mean()
    return float(cos), float(top1)


def peer(fp: torch.nn.Module, inputs: dict[str, Any], t: int, levels: int, repeats: int):
    from spikingjelly.activation_based.ann2snn import ModuleConverter
    from spikingjelly.activation_based.ann2snn.recipes import Qwen2SNNConfig, Qwen2SNNRecipe, calibrate_qwen2_snn

    cfg = Qwen2SNNConfig(time_steps=t, calibration_levels=levels)
    cal = calibrate_qwen2_snn(fp, [inputs], cfg)
    snn = ModuleConverter(Qwen2SNNRecipe(cal, cfg)).convert(copy.deepcopy(fp))
    with torch.inference_mode():
        out = snn(**inputs).logits
        dt = _median_time(lambda: snn(**inputs), repeats)
    return out, dt


def ours(fp: torch.nn.Module, inputs: dict[str, Any], coder: str, t: int, attention: str, repeats: int,
         act_group_size: int | None = None):
    m = spikemllm.convert(copy.deepcopy(fp), spikemllm.SpikeConfig(coder=coder, timesteps=t, weight_bits=8,
                                                                   attention=attention, mode="faithful",
                                                                   act_group_size=act_group_size),
                          progress=False)
    with torch.inference_mode():
        out = m(**inputs).logits
        dt = _median_time(lambda: m(**inputs), repeats)
        spikemllm.set_mode(m, "fused")
        assert torch.equal(m(**inputs).logits, out)
    return out, dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        import logging

        from loguru import logger

        logger.remove()
        logging.getLogger().setLevel(logging.ERROR)
    except ImportError:
        pass
    fp, inputs = tiny_qwen2()
    with torch.inference_mode():
        ref = fp(**inputs).logits
        t_fp = _median_time(lambda: fp(**inputs), 4 * args.repeats + 1)
    print(f"tiny Qwen2 (hidden 256, 4 layers), 2 x 64 tokens; FP forward {t_fp * 1e3:.1f} ms CPU; torch threads "
          f"{torch.get_num_threads()}")
    print("| system | setting | T | weights | attention | cosine to FP | top-1 agreement | CPU time / FP |")
    print("|---|---|---:|---|---|---:|---:|---:|")
    rows = []
    for t in PEER_T:
        for levels in sorted({min(16, t), t}):
            out, dt = peer(fp, inputs, t, levels, args.repeats)
            cos, top1 = fidelity(out, ref)
            rows.append(("SpikingJelly 2.0", t, cos))
            print(f"| SpikingJelly 2.0 | signed IF, levels={levels} | {t} | float | Q/K/V spikes, float softmax | "
                  f"{cos:.4f} | {top1 * 100:.1f}% | {dt / t_fp:.1f}x |", flush=True)
    for attention in ("dense", "spike"):
        for label, coder, t in OURS:
            out, dt = ours(fp, inputs, coder, t, attention, args.repeats)
            cos, top1 = fidelity(out, ref)
            rows.append((f"spikemllm {label} {attention}", t, cos))
            print(f"| spikemllm | {label} | {t} | W8 per-channel | {attention} | {cos:.4f} | {top1 * 100:.1f}% | "
                  f"{dt / t_fp:.1f}x |", flush=True)
    # Finer activation scales: one per token and group of input features (SpikeConfig.act_group_size).
    for group in (32, 16):
        for t in (3, 4):
            out, dt = ours(fp, inputs, "tc-lif", t, "dense", args.repeats, act_group_size=group)
            cos, top1 = fidelity(out, ref)
            rows.append(("spikemllm TC-LIF dense", t, cos))
            print(f"| spikemllm | TC-LIF, act groups of {group} | {t} | W8 per-channel | dense | {cos:.4f} | "
                  f"{top1 * 100:.1f}% | {dt / t_fp:.1f}x |", flush=True)
    ours_t4 = max(c for n, t, c in rows if n == "spikemllm TC-LIF dense" and t == 4)
    peer_t32 = max(c for n, t, c in rows if n == "SpikingJelly 2.0" and t == 32)
    verdict = "met" if ours_t4 > peer_t32 else "MISSED"
    print(f"\nAcceptance (TC-LIF T=4 cosine > SpikingJelly T=32 cosine, best levels): {ours_t4:.4f} vs "
          f"{peer_t32:.4f}: {verdict}")


if __name__ == "__main__":
    main()
