"""The one rounding rule of spikemllm: round half away from zero.

``round(2.5) = 3``, ``round(-2.5) = -3``, ``round(0.49999997) = 0``. It is computed as
``sign(u) * (floor(|u|) + [|u| - floor(|u|) >= 0.5])``: ``|u| - floor(|u|)`` is exact in IEEE floating point,
so no tie is decided by a rounding error (``floor(|u| + 0.5)`` would round ``0.49999997`` up).

Why not torch's half-to-even? A spiking neuron realises this rule directly: its membrane is charged with
``|u|``, it fires while the membrane reaches ``threshold - 1/2`` and subtracts the threshold (soft reset), and
its polarity is latched from ``sign(u)``. Half-to-even would need the neuron to know the parity of its count.
Every quantizer and every coder uses :func:`round_half_away`, so the spiking model and the quantized model
round every tie the same way.
"""
from __future__ import annotations

import torch


def units_dtype(dtype: torch.dtype) -> torch.dtype:
    """Float type in which activations are divided by their scale (fp16/bf16 are widened, exactly)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def round_half_away(u: torch.Tensor) -> torch.Tensor:
    """Round to the nearest integer, ties away from zero; returns the same float dtype."""
    frac = u.abs()
    r = frac.floor()
    frac.sub_(r)                    # |u| - floor(|u|): exact in IEEE arithmetic
    r.add_(frac.ge_(0.5))           # + [frac >= 1/2]  (ge_ on a float tensor stores 0.0 / 1.0)
    return r.copysign_(u)


def check_finite(t: torch.Tensor, what: str) -> None:
    """Raise a ValueError that says what to do when ``t`` holds NaN or Inf."""
    if not bool(torch.isfinite(t).all()):
        raise ValueError(
            f"{what} contains NaN or Inf; spike coding needs finite values. Check the input for overflow "
            "(fp16 activations often overflow: run the model in float32 or bfloat16)."
        )
