"""Measure FP16 tokens/s at batch 1 of a Qwen2-shaped language model with random weights (the GPU baseline).

    .venv/bin/python benchmarks/bench_gpu_fp16.py                     # Qwen2-VL-7B's LM shape, full depth
    .venv/bin/python benchmarks/bench_gpu_fp16.py --layers 8          # fewer layers, time scaled to full depth
    .venv/bin/python benchmarks/bench_gpu_fp16.py --device cpu --scale 0.05 --layers 2   # a CPU smoke run

Without a CUDA device (and without ``--device cpu``) it says so and exits 0. The model is built from a
transformers ``Qwen2Config`` (hidden 3584, intermediate 18944, 28 layers, 28 heads, 4 KV heads, vocab 152064 by
default; ``--scale`` shrinks hidden/intermediate), so only the shape matters, never the weights. It times a
prefill of ``--prompt-tokens`` and ``--new-tokens`` greedy decode steps with a KV cache (plain eager PyTorch,
the same kind of stack as the paper's 43.5 tok/s), and prints the roofline of the same device for comparison.
"""
from __future__ import annotations

import argparse
import time


def _config(args: argparse.Namespace):
    from transformers import Qwen2Config

    heads, kv = 28, 4
    hd = 128
    hidden = max(heads * 8, int(round(3584 * args.scale / heads)) * heads)
    hd = hidden // heads
    inter = max(64, int(round(18944 * args.scale / 64)) * 64)
    return Qwen2Config(hidden_size=hidden, intermediate_size=inter, num_hidden_layers=args.layers,
                       num_attention_heads=heads, num_key_value_heads=kv, head_dim=hd,
                       vocab_size=args.vocab, max_position_embeddings=max(4096, args.prompt_tokens + args.new_tokens),
                       tie_word_embeddings=False)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _power_w(device: str) -> float | None:
    import torch

    if not device.startswith("cuda"):
        return None
    try:
        return torch.cuda.power_draw() / 1000.0  # milliwatts via NVML, where pynvml is installed
    except Exception:  # noqa: BLE001 - NVML is optional
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=28)
    ap.add_argument("--full-layers", type=int, default=28, help="depth the timing is scaled to")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply hidden and intermediate sizes")
    ap.add_argument("--vocab", type=int, default=152064)
    ap.add_argument("--prompt-tokens", type=int, default=320)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=8)
    ap.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    ap.add_argument("--gpu-spec", default=None, help="a800 / h200: roofline to compare against (auto from name)")
    a = ap.parse_args()

    import torch

    device = a.device or ("cuda" if torch.cuda.is_available() else None)
    if device is None:
        print("no CUDA GPU available: nothing measured (pass --device cpu for a smoke run)")
        return 0
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    from transformers import DynamicCache, Qwen2ForCausalLM

    cfg = _config(a)
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM._from_config(cfg, dtype=dtype, attn_implementation="sdpa")
    model.eval()
    n_params = sum(p.numel() for p in model.parameters())
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
    print(f"device {name}, dtype {dtype}, layers {cfg.num_hidden_layers}, hidden {cfg.hidden_size}, "
          f"intermediate {cfg.intermediate_size}, vocab {cfg.vocab_size}, params {n_params / 1e9:.3f} B")
    ids = torch.randint(0, cfg.vocab_size, (1, a.prompt_tokens), device=device)

    def generate(steps: int) -> tuple[float, float]:
        cache = DynamicCache()
        _sync(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
            _sync(device)
            t1 = time.perf_counter()
            nxt = out.logits[:, -1:].argmax(-1)
            for _ in range(steps):
                out = model(input_ids=nxt, cache=cache, use_cache=True)  # the cache grows in place
                nxt = out.logits[:, -1:].argmax(-1)
        _sync(device)
        return t1 - t0, time.perf_counter() - t1

    generate(min(a.warmup, a.new_tokens))
    p0 = _power_w(device)
    prefill_s, decode_s = generate(a.new_tokens)
    p1 = _power_w(device)
    k = a.full_layers / a.layers
    tok_s = a.new_tokens / decode_s
    print(f"prefill {a.prompt_tokens} tokens: {prefill_s * 1e3:.1f} ms")
    print(f"decode: {tok_s:.1f} tok/s measured ({decode_s / a.new_tokens * 1e3:.2f} ms/token)")
    if k != 1:
        print(f"scaled to {a.full_layers} layers (decoder time x{k:.2f}, lm_head included in the scaling, an "
              f"upper bound on time): ~{tok_s / k:.1f} tok/s")
    if p0 is not None and p1 is not None:
        print(f"GPU power (NVML) around the run: {p0:.0f} W before, {p1:.0f} W after decode")
    spec_name = a.gpu_spec or ("h200" if "H200" in name else "a800" if ("A800" in name or "A100" in name) else None)
    if spec_name:
        from spikemllm.hardware.gpu import get_gpu

        spec = get_gpu(spec_name)
        bytes_tok = n_params * 2 - cfg.vocab_size * cfg.hidden_size * 2  # embedding rows are gathered, not read
        roof = spec.hbm_bandwidth / bytes_tok
        print(f"{spec.name} roofline for this shape: {roof:.1f} tok/s (weights {bytes_tok / 1e9:.2f} GB/token); "
              f"measured {tok_s / roof:.0%} of it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
