"""Whole converted models against their float originals: wall-time ratios FP : fused : faithful.

    .venv/bin/python benchmarks/bench_convert.py [--repeats 9] [--threads 1] [--profile] [--tables ...]

Models (random weights, nothing downloaded):
* tiny Qwen2: hidden 256, 4 layers, 8 heads (4 KV), MLP 1024, vocab 2048; input 2 x 64 tokens;
* tiny Qwen2-VL: the same LM, a 4-block vision tower (embed 128), one 8x8-patch image per sequence (64 patches,
  16 image tokens after the 2x2 merge) inside 2 x 64 tokens.

Each setting converts a deep copy of the float model (W4 RTN, uniform T, dense attention unless marked) and
times ``model(**inputs)`` under ``torch.inference_mode``; repeats are interleaved (FP, fused, faithful, FP, ...)
so that machine noise hits every path alike. The table gives ratios to FP of the median CPU time of the
calling thread (one torch thread: the work itself, robust on a shared machine; the verdict uses it), of the
median wall time and of the minimum wall time (the least-disturbed run). ``--profile`` adds a
cProfile summary of one faithful and one fused forward.

A second table (``overheads``) puts side by side, per coder setting, the fused model with dense attention, with
spiking attention and with activation scales per group of 16 features (dense attention), and the float
backend (integer-valued float matmuls, the engine before issue 12) of the dense model: the ratios
spiking / dense attention (acceptance: <= 1.3) and groups of 16 / per token (<= 1.5), CPU time, medians. The
groups model also runs with the native kernel switched off (its torch path, the engine before the kernel) and on
the float backend: all three must give identical logits.
"""
from __future__ import annotations

import argparse
import copy
import cProfile
import io
import pstats
import statistics
import time
from typing import Any

import torch

import spikemllm
from spikemllm.nn import native, set_backend

SETTINGS = [("TC-LIF", "tc-lif", 3), ("TC-LIF", "tc-lif", 4), ("IF", "if", 7), ("IF", "if", 15)]
TEXT = dict(vocab_size=2048, hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=8,
            num_key_value_heads=4, max_position_embeddings=512, tie_word_embeddings=False, bos_token_id=1,
            eos_token_id=2, pad_token_id=0)


def tiny_qwen2(seed: int = 0) -> tuple[torch.nn.Module, dict[str, Any]]:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    model = Qwen2ForCausalLM._from_config(Qwen2Config(**TEXT), attn_implementation="eager").eval()
    ids = torch.randint(3, TEXT["vocab_size"], (2, 64), generator=torch.Generator().manual_seed(seed + 1))
    return model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def tiny_qwen2_vl(seed: int = 0) -> tuple[torch.nn.Module, dict[str, Any]]:
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    image_id = 2000
    text = dict(TEXT, rope_parameters={"rope_type": "default", "mrope_section": [4, 6, 6], "rope_theta": 10000.0})
    vision = dict(depth=4, embed_dim=128, hidden_size=256, num_heads=4, mlp_ratio=4, patch_size=4,
                  spatial_merge_size=2, temporal_patch_size=2)
    cfg = Qwen2VLConfig(text_config=text, vision_config=vision, image_token_id=image_id, video_token_id=2001,
                        vision_start_token_id=2002, vision_end_token_id=2003)
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration._from_config(cfg, attn_implementation="eager").eval()
    grid = torch.tensor([[1, 8, 8], [1, 8, 8]])
    n_img = 64 // 4
    g = torch.Generator().manual_seed(seed + 1)
    pix = torch.randn(int(grid.prod(dim=1).sum()), 3 * 2 * 4 * 4, generator=g)
    ids = torch.randint(3, 1900, (2, 64), generator=g)
    ids[:, 4:4 + n_img] = image_id
    return model, {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": pix,
                   "image_grid_thw": grid, "mm_token_type_ids": (ids == image_id).long()}


def _timed(fn, inputs) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this thread): with one torch thread every op runs on the calling thread, so
    CPU time is the work itself, without the time spent descheduled on a shared machine."""
    t0, c0 = time.perf_counter(), time.thread_time()
    fn(**inputs)
    return time.perf_counter() - t0, time.thread_time() - c0


def measure(fp: torch.nn.Module, inputs: dict[str, Any], coder: str, t: int, attention: str, repeats: int
            ) -> dict[str, float]:
    model = spikemllm.convert(copy.deepcopy(fp), spikemllm.SpikeConfig(coder=coder, timesteps=t, attention=attention),
                              progress=False)
    fused = copy.deepcopy(model)
    faithful = spikemllm.set_mode(model, "faithful")
    paths = {"fp": fp, "fused": fused, "faithful": faithful}
    wall: dict[str, list[float]] = {k: [] for k in paths}
    cpu: dict[str, list[float]] = {k: [] for k in paths}
    with torch.inference_mode():
        for m in paths.values():
            m(**inputs)  # warm-up: weight caches, allocator
        for _ in range(repeats):
            for k, m in paths.items():
                w, c = _timed(m, inputs)
                wall[k].append(w)
                cpu[k].append(c)
    return {**{k: statistics.median(v) for k, v in wall.items()}, **{f"{k}_min": min(v) for k, v in wall.items()},
            **{f"{k}_cpu": statistics.median(v) for k, v in cpu.items()}}


def overheads(fp: torch.nn.Module, inputs: dict[str, Any], coder: str, t: int, repeats: int) -> dict[str, float]:
    """Median CPU time of each fused variant (interleaved repeats), keyed like the table's columns."""
    def conv(**kw: Any) -> torch.nn.Module:
        return spikemllm.convert(copy.deepcopy(fp), spikemllm.SpikeConfig(coder=coder, timesteps=t, **kw),
                                 progress=False)

    paths = {"fp": fp, "dense": conv(attention="dense"), "spike": conv(attention="spike"),
             "groups16": conv(attention="dense", act_group_size=16)}
    paths["dense_float"] = set_backend(copy.deepcopy(paths["dense"]), "float")
    paths["groups16_torch"] = paths["groups16"]  # the same model with the native kernel switched off
    groups_float = set_backend(copy.deepcopy(paths["groups16"]), "float")  # outside inference mode: deepcopy

    def run(k: str, m: torch.nn.Module) -> torch.Tensor:
        native.set_enabled(k != "groups16_torch")
        try:
            return m(**inputs).logits
        finally:
            native.set_enabled(True)

    cpu: dict[str, list[float]] = {k: [] for k in paths}
    with torch.inference_mode():
        same = torch.equal(run("dense", paths["dense"]), run("dense_float", paths["dense_float"]))
        g = run("groups16", paths["groups16"])
        same_groups = (torch.equal(g, run("groups16_torch", paths["groups16"]))
                       and torch.equal(g, groups_float(**inputs).logits))
        for k, m in paths.items():
            run(k, m)  # warm-up
        for _ in range(repeats):
            for k, m in paths.items():
                t0 = time.thread_time()
                run(k, m)
                cpu[k].append(time.thread_time() - t0)
    return {**{k: statistics.median(v) for k, v in cpu.items()}, "identical": float(same),
            "identical_groups": float(same_groups)}


def profile(model: torch.nn.Module, inputs: dict[str, Any], top: int = 12) -> str:
    with torch.inference_mode():
        model(**inputs)
        pr = cProfile.Profile()
        pr.enable()
        for _ in range(3):
            model(**inputs)
        pr.disable()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(top)
    return s.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", nargs="*", default=["qwen2", "qwen2_vl"])
    ap.add_argument("--attention", nargs="*", default=["dense", "spike"])
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--tables", nargs="*", default=["modes", "overheads"], choices=["modes", "overheads"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, repeats {args.repeats} (median)")
    builders = {"qwen2": tiny_qwen2, "qwen2_vl": tiny_qwen2_vl}
    if "overheads" in args.tables:
        print("\n### fused overheads (CPU time, ratios of medians)\n")
        print("| model | coder | T | FP ms | dense fused / FP | float backend (before) / FP | spike-attn fused / FP | "
              "act groups 16 / FP | groups 16, torch path / FP | spike / dense attn (<= 1.3) | "
              "groups 16 / per token (<= 1.5) | int == float backend (dense; groups: native, torch, float) |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for name in args.models:
            fp, inputs = builders[name]()
            for label, coder, t in SETTINGS:
                r = overheads(fp, inputs, coder, t, args.repeats)
                sd, gt = r["spike"] / r["dense"], r["groups16"] / r["dense"]
                print(f"| {name} | {label} | {t} | {r['fp'] * 1e3:.1f} | {r['dense'] / r['fp']:.2f}x | "
                      f"{r['dense_float'] / r['fp']:.2f}x | {r['spike'] / r['fp']:.2f}x | "
                      f"{r['groups16'] / r['fp']:.2f}x | {r['groups16_torch'] / r['fp']:.2f}x | "
                      f"{sd:.2f}x {'ok' if sd <= 1.3 else 'MISS'} | {gt:.2f}x {'ok' if gt <= 1.5 else 'MISS'} | "
                      f"{'yes' if r['identical'] else 'NO'}; {'yes' if r['identical_groups'] else 'NO'} |",
                      flush=True)
    if "modes" not in args.tables:
        return
    print("\n### FP : fused : faithful\n")
    print("| model | attention | coder | T | FP ms (CPU / wall median / wall min) | fused / FP (CPU / wall median / "
          "wall min) | faithful / FP (CPU / wall median / wall min) | faithful bound | verdict (CPU) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---|")
    for name in args.models:
        fp, inputs = builders[name]()
        for attention in args.attention:
            for label, coder, t in SETTINGS:
                r = measure(fp, inputs, coder, t, attention, args.repeats)
                ratio = {p: [r[f"{p}{s}"] / r[f"fp{s}"] for s in ("_cpu", "", "_min")] for p in ("fused", "faithful")}
                ok = [w for w, bad in (("fused", ratio["fused"][0] > 1.3), ("faithful", ratio["faithful"][0] > t + 1))
                      if bad]
                cell = {p: " / ".join(f"{x:.2f}x" for x in v) for p, v in ratio.items()}
                print(f"| {name} | {attention} | {label} | {t} | {r['fp_cpu'] * 1e3:.1f} / {r['fp'] * 1e3:.1f} / "
                      f"{r['fp_min'] * 1e3:.1f} | {cell['fused']} | {cell['faithful']} | {t + 1}x | "
                      f"{'ok' if not ok else 'MISS ' + ', '.join(ok)} |", flush=True)
    if args.profile:
        fp, inputs = tiny_qwen2()
        for mode in ("fused", "faithful"):
            m = spikemllm.convert(copy.deepcopy(fp), spikemllm.SpikeConfig(coder="tc-lif", timesteps=4, mode=mode),
                                  progress=False)
            print(f"\n### cProfile, tiny Qwen2, TC-LIF T=4, {mode}, 3 forwards\n```\n{profile(m, inputs)}```")


if __name__ == "__main__":
    main()
