"""Integer quantizers for activations and weights.

A :class:`QuantSpec` says how: ``bits``, ``symmetric`` (codes in ``[-(2**(b-1)-1), 2**(b-1)-1]``, zero point 0)
or asymmetric (codes in ``[0, 2**b - 1]`` with a zero point), ``granularity`` and an optional clipping ratio.
Granularities, for a tensor whose last dimension is the reduction (input-feature) dimension:

* ``per-tensor``: one scale;
* ``per-token`` / ``per-channel``: one scale per row (a token of an activation, an output channel of a
  ``[out, in]`` weight) -- the same reduction, named for what a row is;
* ``per-group``: rows split into groups of ``group_size`` consecutive features, one scale per group.

``quantize(x, spec)`` returns integer-valued codes (float dtype, exact), the scale and the zero point, so that
``dequantize(q, scale, zero) = (q - zero) * scale``. The integer range comes from :func:`int_range` (coders build
their levels on it, so quantization stays below coding) and rounding from :func:`spikemllm.quant.rounding.round_half_away`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from .rounding import check_finite, round_half_away, units_dtype

GRANULARITIES = ("per-tensor", "per-token", "per-channel", "per-group")


def int_range(bits: int, signed: bool = True) -> tuple[int, int]:
    """``(qmin, qmax)`` of ``bits``-bit codes: symmetric ``-(2**(b-1)-1)..2**(b-1)-1`` or unsigned ``0..2**b-1``."""
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 2 or bits > 16:
        raise ValueError(f"bits={bits!r} is out of range; allowed values: integers 2..16")
    if signed:
        return -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1
    return 0, 2 ** bits - 1


@dataclass(frozen=True)
class QuantSpec:
    """How to quantize one tensor. Frozen so it can key caches and round-trip through JSON."""

    bits: int = 4
    symmetric: bool = True
    granularity: str = "per-token"
    group_size: int = 128
    clip_ratio: float = 1.0

    def __post_init__(self) -> None:
        int_range(self.bits, self.symmetric)  # validates bits
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity={self.granularity!r} is unknown; allowed values: {', '.join(GRANULARITIES)}")
        if self.granularity == "per-group" and (not isinstance(self.group_size, int) or self.group_size < 1):
            raise ValueError(f"group_size={self.group_size!r} is invalid; allowed values: integers >= 1")
        if not (0.0 < float(self.clip_ratio) <= 1.0):
            raise ValueError(f"clip_ratio={self.clip_ratio!r} is out of range; allowed values: 0 < clip_ratio <= 1")

    @property
    def qmin(self) -> int:
        return int_range(self.bits, self.symmetric)[0]

    @property
    def qmax(self) -> int:
        return int_range(self.bits, self.symmetric)[1]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "QuantSpec":
        return cls(**d)


@dataclass
class Quantized:
    """Integer codes (integer-valued floats), scale and zero point; ``q`` has the input's grouped shape."""

    q: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor | None

    def dequantize(self) -> torch.Tensor:
        return dequantize(self.q, self.scale, self.zero)


def _grouped(x: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    if spec.granularity != "per-group":
        return x
    n = x.shape[-1]
    if n % spec.group_size:
        raise ValueError(
            f"group_size={spec.group_size} does not divide the last dimension ({n}); "
            f"allowed values: a divisor of {n}"
        )
    return x.reshape(*x.shape[:-1], n // spec.group_size, spec.group_size)


def compute_scale(x: torch.Tensor, spec: QuantSpec, qmax: torch.Tensor | int | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scale (and zero point) for ``x`` already grouped; ``qmax`` overrides the code range (per-token T)."""
    dt = units_dtype(x.dtype)
    xf = x.to(dt)
    dims: tuple[int, ...] = tuple(range(xf.dim())) if spec.granularity == "per-tensor" else (-1,)
    keep = spec.granularity != "per-tensor"
    if spec.symmetric:
        # max |x| in one pass, without materialising |x| (this is on every layer's hot path)
        top = torch.linalg.vector_norm(xf, ord=float("inf"), dim=dims, keepdim=keep) * spec.clip_ratio
        check_finite(top, "tensor to quantize")
        qm = spec.qmax if qmax is None else qmax
        scale = top / qm
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        return scale, None
    lo = xf.amin(dim=dims, keepdim=keep).clamp(max=0) * spec.clip_ratio
    hi = xf.amax(dim=dims, keepdim=keep).clamp(min=0) * spec.clip_ratio
    check_finite(hi - lo, "tensor to quantize")
    span = spec.qmax - spec.qmin if qmax is None else qmax
    scale = (hi - lo) / span
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    zero = round_half_away(-lo / scale)
    return scale, zero


def to_units(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | None = None) -> torch.Tensor:
    """The real-valued neuron input ``u = x / scale (+ zero)``: what a coder's ``simulate`` is charged with."""
    u = x.to(units_dtype(x.dtype)) / scale
    return u if zero is None else u + zero


def quantize(x: torch.Tensor, spec: QuantSpec, scale: torch.Tensor | None = None,
             zero: torch.Tensor | None = None, qmax: torch.Tensor | int | None = None) -> Quantized:
    """Quantize ``x``; a given ``scale`` (static calibration) is used as is, else computed from ``x``.

    Per-group results keep the grouped shape ``[..., n_groups, group_size]``; reshape ``q`` back if needed.
    """
    xg = _grouped(x, spec)
    if scale is None:
        scale, zero = compute_scale(xg, spec, qmax)
    else:
        check_finite(xg, "tensor to quantize")
    q = round_half_away(to_units(xg, scale, zero))
    if qmax is None:
        q = q.clamp_(spec.qmin, spec.qmax)
    elif isinstance(qmax, int):
        q = q.clamp_(-qmax if spec.symmetric else 0, qmax)
    else:  # per-row range (per-token timesteps)
        qm = qmax.to(q.dtype)
        q = torch.clamp(q, min=-qm if spec.symmetric else torch.zeros_like(qm), max=qm)
    return Quantized(q=q, scale=scale, zero=zero)


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | None = None) -> torch.Tensor:
    return (q if zero is None else q - zero) * scale


def fake_quantize(x: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """Quantize then dequantize, in ``x``'s shape and dtype: the ANN reference of the spiking model."""
    r = quantize(x, spec)
    return r.dequantize().reshape(x.shape).to(x.dtype)
