"""Spike-driven products: ``sum_t w_t * (S_t @ B)`` for the spike planes ``S_t`` of integer codes.

Shared by :class:`~spikemllm.nn.SpikeLinear` (``B`` = integer weights) and spiking attention (``B`` = integer
keys or values). ``faithful`` runs the ``T`` steps: each step's spikes gate rows of ``B`` and the steps are
combined with the coder's time weights (Horner ``acc = 2*acc + S_t B`` for TC-LIF, a plain sum for IF).
Otherwise the codes are used once (one matmul). Both are exact integer arithmetic in the given float dtype while
the partial sums stay below the dtype's exact-integer bound (``2**24`` for float32), so they agree bit for bit.
"""
from __future__ import annotations

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
    horner = coder.coding == "tc-lif"
    planes = coder.planes(q, t, t_max)
    if q.dim() == 2 and b.dim() == 2 and t_max * q.shape[0] * b.shape[1] * q.element_size() <= _CAT_BYTES:
        # Same products as step-by-step, as one matmul over the stacked planes (better cache use).
        parts = (torch.cat(list(planes)) @ b).view(t_max, q.shape[0], b.shape[1])
    else:
        parts = (s @ b for s in planes)
    acc = None
    for part in parts:
        acc = part.clone() if acc is None else (acc.mul_(2).add_(part) if horner else acc.add_(part))
    return acc
