"""SpikeLinear against FP32 nn.Linear at Qwen2-VL-2B layer shapes: integer vs float backend, weight storage.

    .venv/bin/python benchmarks/bench_spike_linear.py [--repeats 7] [--threads 2] [--tokens 512 32 1]

Two tables (markdown), every figure the median wall time of a path divided by FP32 nn.Linear's on the same
input, repeats interleaved so that machine noise hits every path alike:

1. backends: each SpikeLinear setting on the ``float`` backend (integer-valued float matmuls over a cached
   float copy of the weights: the engine before issue 12) and on the ``int`` backend (int8 x int8 -> int32,
   int8 weights only); the last columns are int / float (the speed-up) and, to show the outputs did not move,
   whether both backends returned identical tensors.
2. weight storage for the fused int path: int8 resident as ``[out, in]`` (what the layer keeps), int8 resident
   as ``[in, out]`` (the kernel's reduction-major layout), and packed int4 (two codes a byte, half the bytes)
   unpacked to int8 on every call. Resident weight bytes are given per layer.
3. activation groups (fused TC-LIF T=4): per-token scales against scales per group of 16 and 32 features, the
   groups with the native kernel and with it switched off (the torch path), and whether both gave identical outputs.
4. the per-token activation quantizer (codes for T=4 TC-LIF, q_max 15): the algorithm before issue 12
   (``vector_norm`` absmax, ten-pass rounding, clamp; re-stated here), ``quantize`` now (float codes) and
   ``quantize_int8`` (int8 codes, the integer engine's input), in microseconds, with a check that all three
   give the same codes and scales.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, Iterator

import torch
from torch import nn

from spikemllm import QuantSpec, SpikeLinear
from spikemllm.io import pack_int4, unpack_int4
from spikemllm.nn import native
from spikemllm.quant import quantize, quantize_int8, round_half_away

SHAPES = [(1536, 1536), (1536, 8960), (8960, 1536)]  # Qwen2-VL-2B text: attention projections, MLP up and down
SETTINGS = [("fused TC-LIF T=4", "tc-lif", 4, "fused"), ("fused IF T=15", "if", 15, "fused"),
            ("faithful TC-LIF T=4", "tc-lif", 4, "faithful")]


def _times(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    with torch.inference_mode():
        for f in fns:
            f()  # warm-up: weight caches, kernel selection, allocator
        times: list[list[float]] = [[] for _ in fns]
        for _ in range(repeats):
            for i, f in enumerate(fns):
                t0 = time.perf_counter()
                f()
                times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


class _Int4Resident(SpikeLinear):
    """The same layer with its codes resident as packed int4, unpacked to int8 for every call."""

    def pack(self) -> "_Int4Resident":
        self._plan()
        self.register_buffer("packed", pack_int4(self.qweight))
        self._buffers["qweight"] = torch.empty(0, dtype=torch.int8)
        return self

    def _plan(self) -> tuple[str, str]:
        if not self._plan_cache:
            return super()._plan()
        return self._plan_cache["plan"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._buffers["qweight"] = unpack_int4(self.packed, self.in_features).reshape(self.out_features, -1)
        try:
            return super().forward(x)
        finally:
            self._buffers["qweight"] = torch.empty(0, dtype=torch.int8)


def _cases(tokens: list[int]) -> Iterator[tuple[int, int, int, nn.Linear, torch.Tensor]]:
    """(tokens, in, out, FP32 layer, input) for every token count and layer shape, in table order."""
    for n in tokens:
        for k, o in SHAPES:
            yield n, k, o, nn.Linear(k, o), torch.randn(n, k)


def backends_table(tokens: list[int], repeats: int) -> None:
    print("\n### int vs float backend (ratio to FP32 nn.Linear; int/float = speed-up)\n")
    print("| tokens | in->out | FP32 ms | setting | float backend | int backend | int / float | identical |")
    print("|---:|---|---:|---|---:|---:|---:|---|")
    for n, k, o, lin, x in _cases(tokens):
        for label, coder, t, mode in SETTINGS:
            fl = SpikeLinear.from_linear(lin, coder=coder, t_text=t, mode=mode)
            fl.backend = "float"
            it = SpikeLinear.from_linear(lin, coder=coder, t_text=t, mode=mode)
            it.backend = "int"
            med = _times([lambda: lin(x), lambda: fl(x), lambda: it(x)], repeats)
            with torch.inference_mode():
                same = torch.equal(fl(x), it(x))
            print(f"| {n} | {k}->{o} | {med[0] * 1e3:.2f} | {label} | {med[1] / med[0]:.2f}x | "
                  f"{med[2] / med[0]:.2f}x | {med[2] / med[1]:.2f}x | {'yes' if same else 'NO'} |", flush=True)


def storage_table(tokens: list[int], repeats: int) -> None:
    print("\n### weight storage, fused TC-LIF T=4, int backend (ratio to FP32 nn.Linear)\n")
    print("| tokens | in->out | FP32 ms | int8 [out,in] | int8 [in,out] | int4 packed, unpacked per call | "
          "weight MiB FP32 / int8 / int4 |")
    print("|---:|---|---:|---:|---:|---:|---|")
    for n, k, o, lin, x in _cases(tokens):
        a = SpikeLinear.from_linear(lin, coder="tc-lif", t_text=4)
        b = SpikeLinear.from_linear(lin, coder="tc-lif", t_text=4)
        b._buffers["qweight"] = b.qweight.t().contiguous().t()  # same values, [in, out] in memory
        c = _Int4Resident.from_linear(lin, coder="tc-lif", t_text=4).pack()
        med = _times([lambda: lin(x), lambda: a(x), lambda: b(x), lambda: c(x)], repeats)
        with torch.inference_mode():
            assert torch.equal(a(x), b(x)) and torch.equal(a(x), c(x))
        mib = [k * o * 4 / 2 ** 20, a.qweight.numel() / 2 ** 20, c.packed.numel() / 2 ** 20]
        print(f"| {n} | {k}->{o} | {med[0] * 1e3:.2f} | {med[1] / med[0]:.2f}x | {med[2] / med[0]:.2f}x | "
              f"{med[3] / med[0]:.2f}x | {' / '.join(f'{v:.1f}' for v in mib)} |", flush=True)


def groups_table(tokens: list[int], repeats: int) -> None:
    print("\n### activation groups, fused TC-LIF T=4, int backend (ratio to FP32 nn.Linear)\n")
    print("| tokens | in->out | FP32 ms | per token | groups 16 native | groups 16 torch | groups 32 native | "
          "groups 32 torch | groups 16 native / per token | identical |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")

    def switched(m: nn.Module, on: bool, x: torch.Tensor) -> Callable[[], object]:
        def run() -> object:
            native.set_enabled(on)
            try:
                return m(x)
            finally:
                native.set_enabled(True)
        return run

    for n, k, o, lin, x in _cases(tokens):
        per_token = SpikeLinear.from_linear(lin, coder="tc-lif", t_text=4)
        g16 = SpikeLinear.from_linear(lin, coder="tc-lif", t_text=4, act_group_size=16)
        g32 = SpikeLinear.from_linear(lin, coder="tc-lif", t_text=4, act_group_size=32)
        fns = [lambda: lin(x), lambda: per_token(x), switched(g16, True, x), switched(g16, False, x),
               switched(g32, True, x), switched(g32, False, x)]
        med = _times(fns, repeats)
        with torch.inference_mode():
            same = all(torch.equal(fns[i](), fns[i + 1]()) for i in (2, 4))
        r = [v / med[0] for v in med]
        print(f"| {n} | {k}->{o} | {med[0] * 1e3:.2f} | " + " | ".join(f"{v:.2f}x" for v in r[1:])
              + f" | {med[2] / med[1]:.2f}x | {'yes' if same else 'NO'} |", flush=True)


def _quantize_before(x: torch.Tensor, qmax: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-token quantizer as it was before issue 12 (float codes)."""
    top = torch.linalg.vector_norm(x, ord=float("inf"), dim=-1, keepdim=True)
    if not bool(torch.isfinite(top).all()):
        raise ValueError("non-finite input")
    scale = top / qmax
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return round_half_away(x / scale).clamp_(-qmax, qmax), scale


def quantizer_table(repeats: int) -> None:
    print("\n### activation quantizer, per token (groups: per token and group of 16), q_max 15, microseconds\n")
    print("| tokens x features | groups | before | quantize now | quantize_int8 | before / int8 | same codes |")
    print("|---|---|---:|---:|---:|---:|---|")
    spec = QuantSpec(bits=5, granularity="per-token")
    for (n, k), gs in [((512, 1536), None), ((32, 1536), None), ((512, 8960), None), ((512, 1536), 16),
                       ((128, 256), None), ((128, 256), 16)]:
        x = torch.randn(n, k) if gs is None else torch.randn(n, k // gs, gs)
        med = _times([lambda: _quantize_before(x, 15), lambda: quantize(x, spec, qmax=15),
                      lambda: quantize_int8(x, spec, qmax=15)], repeats * 3)
        a, b, c = _quantize_before(x, 15), quantize(x, spec, qmax=15), quantize_int8(x, spec, qmax=15)
        same = torch.equal(a[0], b.q) and torch.equal(b.q, c.q.float()) and torch.equal(a[1], c.scale)
        print(f"| {n} x {k} | {gs or '-'} | {med[0] * 1e6:.0f} | {med[1] * 1e6:.0f} | {med[2] * 1e6:.0f} | "
              f"{med[0] / med[2]:.2f}x | {'yes' if same else 'NO'} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, nargs="*", default=[512, 32])
    ap.add_argument("--tables", nargs="*", default=["backends", "storage", "groups", "quantizer"],
                    choices=["backends", "storage", "groups", "quantizer"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, repeats {args.repeats} (median)")
    if "backends" in args.tables:
        backends_table(args.tokens, args.repeats)
    if "storage" in args.tables:
        storage_table(args.tokens, args.repeats)
    if "groups" in args.tables:
        groups_table(args.tokens, args.repeats)
    if "quantizer" in args.tables:
        quantizer_table(args.repeats)


if __name__ == "__main__":
    main()
