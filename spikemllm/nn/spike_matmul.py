"""Spike-driven products: ``sum_t w_t * (S_t @ B)`` for the spike planes ``S_t`` of integer codes.

Shared by :class:`~spikemllm.nn.SpikeLinear` (``B`` = integer weights) and spiking attention (``B`` = integer
keys or values). ``faithful`` runs the ``T`` steps: each step's spikes gate rows of ``B`` and the steps are
combined by the coder (:meth:`~spikemllm.coding.Coder.combine_`: Horner ``acc = 2*acc + S_t B`` for TC-LIF, a plain sum for IF).
Otherwise the codes are used once (one matmul). Both are exact integer arithmetic in the given float dtype while
the partial sums stay below the dtype's exact-integer bound (``2**24`` for float32), so they agree bit for bit.
"""
from __future__ import annotations

import threading

import torch

from ..coding import Coder

EXACT_F32 = 2 ** 24
_CAT_BYTES = 2 ** 28  # stack the planes into one matmul while the step outputs stay under 256 MiB


def exact_dtype(bound: int) -> torch.dtype:
    """float32 while every integer partial sum is exact in it, else float64 (exact to 2**53)."""
    if bound >= 2 ** 53:
        raise ValueError(f"integer partial sums up to {bound} cannot be exact in float64; lower bits or timesteps")
    return torch.float32 if bound < EXACT_F32 else torch.float64


def spike_matmul(q: torch.Tensor, t: torch.Tensor | int, t_max: int, coder: Coder, b: torch.Tensor,
                 faithful: bool) -> torch.Tensor:
    """``q @ b`` computed from ``q``'s spike trains (faithful) or its codes; ``q``, ``b`` integer-valued floats."""
    if not faithful:
        return q @ b
    planes = coder.planes(q, t, t_max)
    if q.dim() == 2 and b.dim() == 2 and t_max * q.shape[0] * b.shape[1] * q.element_size() <= _CAT_BYTES:
        # Same products as step-by-step, as one matmul over the stacked planes (better cache use).
        parts = (torch.cat(list(planes)) @ b).view(t_max, q.shape[0], b.shape[1])
    else:
        parts = (s @ b for s in planes)
    acc = None
    for part in parts:
        acc = part.clone() if acc is None else coder.combine_(acc, part)
    return acc


# --- scratch buffers ---------------------------------------------------------------------------------------
SCRATCH_BYTES = 2 ** 26  # reuse temporaries up to 64 MiB each; larger ones are allocated per call
_scratch = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An uninitialised tensor reused across calls (per thread, name, dtype and device).

    Large temporaries freshly allocated on every call cost more than the arithmetic on them (the allocator
    returns them to the OS and each call faults the pages in again). The caller must be done with the
    tensor before asking for the same name again; results returned to users are never scratch.
    Buffers made under ``torch.inference_mode`` are inference tensors, which may not be updated in place outside
    it: each mode keeps its own buffers (a model run under inference mode, then outside, still works).
    """
    numel = 1
    for d in shape:
        numel *= d
    if numel * torch.empty((), dtype=dtype).element_size() > SCRATCH_BYTES:
        return torch.empty(shape, dtype=dtype, device=device)
    bufs = getattr(_scratch, "bufs", None)
    if bufs is None:
        bufs = _scratch.bufs = {}
    key = (name, dtype, device, torch.is_inference_mode_enabled())
    buf = bufs.get(key)
    if buf is None or buf.numel() < numel:
        buf = bufs[key] = torch.empty(numel, dtype=dtype, device=device)
    return buf[:numel].view(shape)


# --- integer kernels ---------------------------------------------------------------------------------------
INT_BOUND = 2 ** 31  # int32 accumulators: exact while every partial sum stays below this


def int_mm_available(device: torch.device) -> bool:
    """Whether an exact int8 x int8 -> int32 matmul runs on ``device`` (``torch._int_mm``: CPU and CUDA)."""
    return hasattr(torch, "_int_mm") and device.type in ("cpu", "cuda")


def int_mm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None, pad: bool | None = None
           ) -> torch.Tensor:
    """``a @ b`` for int8 ``a [M, K]`` and ``b [K, N]`` as exact int32 (any strides on CPU), into ``out`` if given.

    CUDA's kernel needs ``M > 16`` and ``K``, ``N`` multiples of 8: the operands are zero-padded there
    (zero rows and columns add nothing, so the result is unchanged) and the padding is cut off. ``pad``
    forces that path (tests run it on CPU); by default it is taken on CUDA only.
    """
    if not (a.device.type == "cuda" if pad is None else pad):
        return torch._int_mm(a, b) if out is None else torch._int_mm(a, b, out=out)
    if out is not None:
        return out.copy_(int_mm(a, b, pad=True))
    m, k = a.shape
    n = b.shape[1]
    pm, pk, pn = max(0, 17 - m), (-k) % 8, (-n) % 8
    if pm or pk:
        a = torch.nn.functional.pad(a, (0, pk, 0, pm))
    if pk or pn:
        b = torch.nn.functional.pad(b, (0, pn, 0, pk))
    out = torch._int_mm(a.contiguous(), b.contiguous())
    return out[:m, :n] if pm or pn else out


def int_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batched exact ``a @ b`` for int8 operands (``[..., M, K] @ [..., K, N]``, equal leading dims) -> int32."""
    if a.dim() == 2 and b.dim() == 2:
        return int_mm(a, b)
    lead = a.shape[:-2]
    a3 = a.reshape(-1, *a.shape[-2:])
    b3 = b.expand(*lead, *b.shape[-2:]).reshape(-1, *b.shape[-2:])
    out = torch.empty(a3.shape[0], a3.shape[1], b3.shape[2], dtype=torch.int32, device=a.device)
    for i in range(a3.shape[0]):
        int_mm(a3[i], b3[i], out=out[i])
    return out.reshape(*lead, a3.shape[1], b3.shape[2])


def spike_matmul_int(q: torch.Tensor, t: torch.Tensor | int, t_max: int, coder: Coder, b: torch.Tensor,
                     faithful: bool) -> torch.Tensor:
    """:func:`spike_matmul` on int8 codes and int8 ``b``, accumulated in int32 (exact below ``2**31``).

    Faithful mode takes the coder's int8 spike planes; for 2-D operands they are stacked into one matmul (the
    same products as one per step), then combined in int32 (Horner for TC-LIF, a sum for rate coding).
    """
    if not faithful:
        return int_matmul(q, b)
    planes = coder.planes(q, t, t_max)
    if q.dim() == 2 and b.dim() == 2 and t_max * q.shape[0] * b.shape[1] * 4 <= _CAT_BYTES:
        parts = int_mm(torch.cat(list(planes)), b).view(t_max, q.shape[0], b.shape[1])
    else:
        parts = (int_matmul(s, b) for s in planes)
    acc = None
    for part in parts:
        acc = part.clone() if acc is None else coder.combine_(acc, part)
    return acc
