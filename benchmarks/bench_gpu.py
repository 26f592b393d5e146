"""Qwen2-VL-2B- and 7B-shaped random models on one GPU: FP16 and BF16 against the spiking model (fused and faithful).

    bash benchmarks/gpu.sh                                     # on a GPU machine: set-up + this script
    python benchmarks/bench_gpu.py                             # the full run (< 8 min on one H200)
    python benchmarks/bench_gpu.py --dry-run                   # tiny shapes on the CPU: checks the code path

Per row: the prefill of 1 image (448x448: 1024 patches, 256 LM tokens) + 256 text tokens, then 64 greedy decode
tokens with the KV cache (``generate``, batch 1, eager PyTorch with sdpa attention), timed per token. It reports
tokens/s of both phases, peak GPU memory, and energy per token from ``nvidia-smi`` power samples integrated over
each phase. The spiking rows convert the same shape with spikemllm's public API (``spikemllm.convert`` with the
paper's TC-LIF Tv/Tt = 3/4, W4 RTN, then ``set_mode`` fused or faithful), so they measure whatever integer engine
the installed spikemllm has; the row's note names the engine a converted layer reports. Faithful and fused must
generate the same tokens (the contract); the table says whether they did.

Weights are random: only shapes matter for speed, memory and power. A time guard (``--budget-s``) skips rows
that no longer fit and stops a decode early (the row then says how many tokens it timed), so the run ends on
time even where the spiking engine is slow.
"""
from __future__ import annotations

import argparse
import gc
import inspect
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gpu_power import PowerSampler, nvidia_smi

# Qwen2-VL's published configs (vision tower and language model); ids are Qwen2-VL's special tokens.
_VISION = dict(depth=32, embed_dim=1280, num_heads=16, mlp_ratio=4, patch_size=14, spatial_merge_size=2,
               temporal_patch_size=2)
_IDS = dict(image_token_id=151655, video_token_id=151656, vision_start_token_id=151652, vision_end_token_id=151653)
SHAPES: dict[str, dict[str, Any]] = {
    "2b": dict(vision=dict(_VISION, hidden_size=1536), ids=_IDS, image=(448, 448), text=dict(
        hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
        vocab_size=151936, tie_word_embeddings=True, mrope=[16, 24, 24])),
    "7b": dict(vision=dict(_VISION, hidden_size=3584), ids=_IDS, image=(448, 448), text=dict(
        hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
        vocab_size=152064, tie_word_embeddings=False, mrope=[16, 24, 24])),
}
_TINY_VISION = dict(depth=2, embed_dim=32, num_heads=2, mlp_ratio=2, patch_size=4, spatial_merge_size=2,
                    temporal_patch_size=2)
_TINY_IDS = dict(image_token_id=250, video_token_id=251, vision_start_token_id=252, vision_end_token_id=253)
TINY: dict[str, dict[str, Any]] = {  # --dry-run: the same two rows per setting, CPU-sized
    "2b": dict(vision=dict(_TINY_VISION, hidden_size=64), ids=_TINY_IDS, image=(16, 16), text=dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=256, tie_word_embeddings=True, mrope=[2, 3, 3])),
    "7b": dict(vision=dict(_TINY_VISION, hidden_size=96), ids=_TINY_IDS, image=(16, 16), text=dict(
        hidden_size=96, intermediate_size=192, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=256, tie_word_embeddings=False, mrope=[2, 4, 6])),
}
SETTINGS = ("fp16", "bf16", "fused", "faithful")


@dataclass
class Row:
    model: str
    setting: str
    dtype: str
    prefill_tokens: int = 0
    prefill_s: float | None = None
    decode_tokens: int = 0
    decode_s: float | None = None
    peak_gib: float | None = None
    weights_gib: float | None = None
    prefill_j: float | None = None
    decode_j: float | None = None
    convert_s: float | None = None
    tokens: list[int] = field(default_factory=list)
    note: str = ""

    def rate(self, phase: str) -> float | None:
        n, s = (self.prefill_tokens, self.prefill_s) if phase == "prefill" else (self.decode_tokens, self.decode_s)
        return n / s if s else None

    def j_per_token(self, phase: str) -> float | None:
        j, n = (self.prefill_j, self.prefill_tokens) if phase == "prefill" else (self.decode_j, self.decode_tokens)
        return j / n if j is not None and n else None


def build(shape: dict[str, Any], dtype: Any, device: str):
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    t = dict(shape["text"])
    mrope = t.pop("mrope")
    t.update(rope_parameters={"rope_type": "default", "mrope_section": mrope, "rope_theta": 1000000.0},
             max_position_embeddings=32768, rms_norm_eps=1e-6,
             bos_token_id=None, eos_token_id=None)  # no end token: every row generates exactly its tokens
    cfg = Qwen2VLConfig(text_config=t, vision_config=dict(shape["vision"], in_chans=3), **shape["ids"])
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2VLForConditionalGeneration._from_config(cfg, dtype=dtype, attn_implementation="sdpa")
    return model.eval()


def inputs_for(model: Any, shape: dict[str, Any], text_tokens: int, device: str, dtype: Any) -> dict[str, Any]:
    """One image and ``text_tokens`` random text tokens, laid out as Qwen2-VL's processor lays them out."""
    import torch

    v, ids = shape["vision"], shape["ids"]
    gh, gw = shape["image"][0] // v["patch_size"], shape["image"][1] // v["patch_size"]
    n_img = gh * gw // v["spatial_merge_size"] ** 2
    g = torch.Generator().manual_seed(1)
    text = torch.randint(0, min(ids.values()), (text_tokens,), generator=g)
    seq = torch.cat([torch.tensor([ids["vision_start_token_id"]]), torch.full((n_img,), ids["image_token_id"]),
                     torch.tensor([ids["vision_end_token_id"]]), text]).unsqueeze(0)
    feat = 3 * v["temporal_patch_size"] * v["patch_size"] ** 2
    out = {"input_ids": seq.to(device), "attention_mask": torch.ones_like(seq).to(device),
           "pixel_values": torch.randn(gh * gw, feat, generator=g).to(device=device, dtype=dtype),
           "image_grid_thw": torch.tensor([[1, gh, gw]], device=device)}
    if "mm_token_type_ids" in inspect.signature(model.forward).parameters:  # transformers >= 5.x asks for it
        out["mm_token_type_ids"] = (seq == ids["image_token_id"]).long().to(device)
    return out


def timed_generate(model: Any, inputs: dict[str, Any], new_tokens: int, deadline: float, sync) -> tuple[list, list]:
    """Token-by-token times of a greedy ``generate``: [start, after prefill, after each decode step]."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList
    from transformers.generation.streamers import BaseStreamer

    class Clock(BaseStreamer):
        def __init__(self) -> None:
            self.times: list[float] = []

        def put(self, value: Any) -> None:
            sync()
            self.times.append(time.perf_counter())

        def end(self) -> None:
            pass

    class Deadline(StoppingCriteria):
        def __call__(self, input_ids, scores, **kw):
            return torch.full((input_ids.shape[0],), time.perf_counter() > deadline, dtype=torch.bool,
                              device=input_ids.device)

    clock = Clock()
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=new_tokens + 1, do_sample=False, streamer=clock,
                             stopping_criteria=StoppingCriteriaList([Deadline()]), pad_token_id=0, eos_token_id=None)
    return clock.times, out[0, inputs["input_ids"].shape[1]:].tolist()


def engine_of(model: Any) -> str:
    """What a converted layer says about how it computes (the engine's backend, when it names one)."""
    from spikemllm.nn.spike_linear import SpikeLinear

    layer = next((m for m in model.modules() if isinstance(m, SpikeLinear)), None)
    if layer is None:
        return ""
    backend = getattr(layer, "backend", None)
    if backend is None:
        found = [p for p in layer.extra_repr().split(", ") if p.startswith(("backend", "engine"))]
        backend = found[0].split("=", 1)[-1] if found else "float-exact (no integer backend reported)"
    return f"engine: {backend}"


def run_row(name: str, shape: dict, setting: str, args: argparse.Namespace, device: str, power: PowerSampler,
            deadline: float) -> Row:
    import torch

    import spikemllm

    spiking = setting in ("fused", "faithful")
    dname = args.spiking_dtype if spiking else {"fp16": "float16", "bf16": "bfloat16"}[setting]
    dtype = getattr(torch, dname)
    row = Row(name, setting, dname)
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model = build(shape, dtype, device)
    if spiking:
        t0 = time.perf_counter()
        cfg = spikemllm.SpikeConfig(coder="tc-lif", timesteps={"vision": 3, "text": 4}, weight_bits=4, method="rtn")
        spikemllm.convert(model, cfg, progress=False)
        spikemllm.set_mode(model, setting)
        sync()
        row.convert_s = time.perf_counter() - t0
        row.note = engine_of(model)
    row.weights_gib = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()]) / 2**30
    inputs = inputs_for(model, shape, args.text_tokens, device, dtype)
    timed_generate(model, {**inputs}, 1, deadline, sync)  # warm-up: kernels, caches, cuBLAS handles
    times, tokens = timed_generate(model, inputs, args.new_tokens, deadline, sync)
    row.prefill_tokens, row.tokens = int(inputs["input_ids"].shape[1]), tokens
    row.prefill_s = times[1] - times[0]
    row.decode_tokens = len(times) - 2
    row.decode_s = times[-1] - times[1] if row.decode_tokens else None
    if row.decode_tokens < args.new_tokens:
        row.note = (row.note + "; " if row.note else "") + f"decode stopped at {row.decode_tokens}/{args.new_tokens} " \
                                                          "tokens by the time budget"
    if cuda:
        row.peak_gib = torch.cuda.max_memory_allocated() / 2**30
    time.sleep(0.15)  # the power reader's last samples of the window
    row.prefill_j = power.energy_j(times[0], times[1])
    row.decode_j = power.energy_j(times[1], times[-1]) if row.decode_tokens else None
    del model, inputs
    gc.collect()
    return row


def _f(x: float | None, fmt: str) -> str:
    return "n/a" if x is None else format(x, fmt)


def table(rows: list[Row]) -> str:
    head = ["model", "setting", "dtype", "prefill tok/s", "decode tok/s", "peak GiB", "weights GiB",
            "prefill J/tok", "decode J/tok", "decode W", "convert s", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        watts = r.decode_j / r.decode_s if r.decode_j is not None and r.decode_s else None
        lines.append("| " + " | ".join([
            r.model, r.setting, r.dtype, _f(r.rate("prefill"), ".0f"), _f(r.rate("decode"), ".1f"),
            _f(r.peak_gib, ".2f"), _f(r.weights_gib, ".2f"), _f(r.j_per_token("prefill"), ".3f"),
            _f(r.j_per_token("decode"), ".2f"), _f(watts, ".0f"), _f(r.convert_s, ".1f"), r.note]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="tiny shapes on the CPU (no GPU needed): a code check")
    ap.add_argument("--models", default="2b,7b", help="shapes to run, comma-separated (default: 2b,7b)")
    ap.add_argument("--settings", default=",".join(SETTINGS), help=f"rows per shape (default: {','.join(SETTINGS)})")
    ap.add_argument("--text-tokens", type=int, default=None, help="prompt text tokens (default: 256; dry run 16)")
    ap.add_argument("--new-tokens", type=int, default=None, help="decode tokens (default: 64; dry run 4)")
    ap.add_argument("--spiking-dtype", default="bfloat16", help="dtype of the spiking rows' unconverted parts "
                    "(default: bfloat16)")
    ap.add_argument("--budget-s", type=float, default=420.0, help="stop starting rows after this many seconds "
                    "(default: 420, so the whole script stays under 8 min)")
    ap.add_argument("--device", default=None, help="default: cuda, or cpu with --dry-run")
    ap.add_argument("--json", default=None, metavar="PATH", help="also write the rows as JSON")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()

    import torch

    device = args.device or ("cpu" if args.dry_run else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print(f"bench_gpu: no CUDA device visible to torch {torch.__version__} (nvidia-smi "
              f"{'found' if nvidia_smi() else 'not found'}). On a GPU machine run `bash benchmarks/gpu.sh`, which "
              "installs a CUDA build of torch there; anywhere, `--dry-run` checks the code on the CPU.",
              file=sys.stderr)
        return 2
    shapes = TINY if args.dry_run else SHAPES
    args.text_tokens = args.text_tokens or (16 if args.dry_run else 256)
    args.new_tokens = args.new_tokens or (4 if args.dry_run else 64)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    bad = [m for m in models if m not in shapes] + [s for s in settings if s not in SETTINGS]
    if bad:
        print(f"bench_gpu: unknown {bad}; models: {sorted(shapes)}, settings: {list(SETTINGS)}", file=sys.stderr)
        return 2
    gpu = "0"
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False  # the spiking contract needs exact float32 products
        props = torch.cuda.get_device_properties(torch.device(device))
        gpu = f"GPU-{props.uuid}" if getattr(props, "uuid", None) else str(torch.device(device).index or 0)
        print(f"device {props.name}, {props.total_memory / 2**30:.0f} GiB, torch {torch.__version__}", flush=True)
    else:
        torch.set_num_threads(1)
        print(f"device cpu (dry run: tiny shapes), torch {torch.__version__}", flush=True)
    power = PowerSampler(gpu) if device.startswith("cuda") else PowerSampler.__new__(PowerSampler)
    if not device.startswith("cuda"):
        power.samples, power.error, power._proc = [], "CPU run: GPU power is not sampled", None
    elif power.error is None:
        power.wait_for_first()
    if power.error:
        print(f"bench_gpu: {power.error}; energy columns show n/a", flush=True)
    deadline = t_start + args.budget_s
    rows: list[Row] = []
    try:
        for name in models:
            for setting in settings:
                left = deadline - time.perf_counter()
                if left < (2 if args.dry_run else 25):
                    rows.append(Row(name, setting, "-", note=f"not run: time budget ({args.budget_s:.0f} s) spent"))
                    continue
                t0 = time.perf_counter()
                try:
                    rows.append(run_row(name, shapes[name], setting, args, device, power, deadline))
                except Exception as e:  # noqa: BLE001  (one failing row must not lose the others' figures)
                    why = " ".join(str(e).split())[:160]
                    rows.append(Row(name, setting, "-", note=f"failed: {type(e).__name__}: {why}"))
                    gc.collect()
                    if device.startswith("cuda"):
                        torch.cuda.empty_cache()
                print(f"[bench_gpu] {name} {setting}: {time.perf_counter() - t0:.1f}s {rows[-1].note}", flush=True)
    finally:
        power.close()
    for name in models:
        fused, faithful = (next((r for r in rows if r.model == name and r.setting == s and r.tokens), None)
                           for s in ("fused", "faithful"))
        if fused and faithful:
            n = min(len(fused.tokens), len(faithful.tokens))
            same = fused.tokens[:n] == faithful.tokens[:n]
            faithful.note = (faithful.note + "; " if faithful.note else "") + \
                f"{'same' if same else 'DIFFERENT'} {n} tokens as fused"
    print()
    print(table(rows))
    if device.startswith("cuda") and not args.dry_run:
        _roofline(rows, shapes, torch.cuda.get_device_name(torch.device(device)))
    print(f"\nwhole run {time.perf_counter() - t_start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 0


def _roofline(rows: list[Row], shapes: dict, device_name: str) -> None:
    """The device's FP16 decode roofline (every LM weight read once per token) beside the measured rates."""
    try:
        from spikemllm.hardware.gpu import get_gpu
    except ImportError:
        return
    spec_name = "h200" if "H200" in device_name else \
        "a800" if ("A800" in device_name or "A100" in device_name) else None
    if spec_name is None:
        return
    spec = get_gpu(spec_name)
    for name, shape in shapes.items():
        t = shape["text"]
        h, i, n, kv = t["hidden_size"], t["intermediate_size"], t["num_hidden_layers"], t["num_key_value_heads"]
        hd = h // t["num_attention_heads"]
        per_layer = h * h * 2 + 2 * h * kv * hd + 3 * h * i
        bytes_tok = 2 * (n * per_layer + t["vocab_size"] * h)
        fp16 = next((r.rate("decode") for r in rows if r.model == name and r.setting == "fp16" and r.decode_s), None)
        print(f"{spec.name} FP16 decode roofline for {name}: {spec.hbm_bandwidth / bytes_tok:.0f} tok/s "
              f"({bytes_tok / 1e9:.1f} GB/token)" + (f"; FP16 measured {fp16:.1f} tok/s" if fp16 else ""))


if __name__ == "__main__":
    raise SystemExit(main())
