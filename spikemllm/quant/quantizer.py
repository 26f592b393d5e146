"""Integer quantizers for activations and weights.

A :class:`QuantSpec` says how: ``bits``, ``symmetric`` (codes in ``[-(2**(b-1)-1), 2**(b-1)-1]``, zero point 0)
or asymmetric (codes in ``[0, 2**b - 1]`` with a zero point), ``granularity`` and an optional clipping ratio.
Granularities, for a tensor whose last dimension is the reduction (input-feature) dimension:

* ``per-tensor``: one scale;
* ``per-token`` / ``per-channel``: one scale per row (a token of an activation, an output channel of a
  ``[out, in]`` weight) -- the same reduction, named for what a row is;
* ``per-group``: rows split into groups of ``group_size`` consecutive features, one scale per group.

``quantize(x, spec)`` returns integer-valued codes (float dtype, exact), the scale and the zero point, so that
``dequantize(q, scale, zero) = (q - zero) * scale``. The integer range comes from :func:`spikemllm.levels.level_spec`
and rounding from :func:`spikemllm.quant.rounding.round_half_away`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..levels import level_spec
from .rounding import check_finite, round_half_away, units_dtype

GRANULARITIES = ("per-tensor", "per-token", "per-channel", "per-group")


@dataclass(frozen=True)
class QuantSpec:
    """How to quantize one tensor. Frozen so it can key caches and round-trip through JSON."""

    bits: int = 4
    symmetric: bool = True
    granularity: str = "per-token"
    group_size: int = 128
    clip_ratio: float = 1.0

    def __post_init__(self) -> None:
        level_spec("if", bits=self.bits, signed=self.symmetric)  # validates bits
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity={self.granularity!r} is unknown; allowed values: {', '.join(GRANULARITIES)}")
        if self.granularity == "per-group" and (not isinstance(self.group_size, int) or self.group_size < 1):
            raise ValueError(f"group_size={self.group_size!r} is invalid; allowed values: integers >= 1")
        if not (0.0 < float(self.clip_ratio) <= 1.0):
            raise ValueError(f"clip_ratio={self.clip_ratio!r} is out of range; allowed values: 0 < clip_ratio <= 1")

    @property
    def qmin(self) -> int:
        return level_spec("if", bits=self.bits, signed=self.symmetric).qmin

    @property
    def qmax(self) -> int:
        return level_spec("if", bits=self.bits, signed=self.symmetric).qmax

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


def _amax_last(a: torch.Tensor) -> torch.Tensor:
    """``a.amax(-1, keepdim=True)``, the same values; short rows (activation groups of <= 32) by halving.

    torch's reduction over a short innermost dimension is slow (measured 850 us for [512, 96, 16] against
    445 us for the halving, a few elementwise maxima over shrinking halves; maxima are exact, NaN propagates).
    """
    if a.shape[-1] > 32:
        return a.amax(-1, keepdim=True)
    while a.shape[-1] > 1 and a.shape[-1] % 2 == 0:
        h = a.shape[-1] // 2
        a = torch.maximum(a[..., :h], a[..., h:])
    return a if a.shape[-1] == 1 else a.amax(-1, keepdim=True)


def compute_scale(x: torch.Tensor, spec: QuantSpec, qmax: torch.Tensor | int | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scale (and zero point) for ``x`` already grouped; ``qmax`` overrides the code range (per-token T)."""
    dt = units_dtype(x.dtype)
    xf = x.to(dt)
    dims: tuple[int, ...] = tuple(range(xf.dim())) if spec.granularity == "per-tensor" else (-1,)
    keep = spec.granularity != "per-tensor"
    if spec.symmetric:
        # max |x|: abs then amax is the same value as vector_norm(ord=inf) (NaN and Inf propagate alike) and
        # measured 5-20x faster on CPU (vector_norm takes a slow generic path); this is on every layer's hot path
        top = (_amax_last(xf.abs()) if keep else xf.abs().amax(dim=dims)) * spec.clip_ratio
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


def _below_half(dtype: torch.dtype) -> float:
    """The largest float below 1/2 in ``dtype`` (``0.5 - 2**-25`` in float32)."""
    return float(torch.nextafter(torch.tensor(0.5, dtype=dtype), torch.tensor(0.0, dtype=dtype)))


_BELOW_HALF = {torch.float32: _below_half(torch.float32), torch.float64: _below_half(torch.float64)}
INT8_QMAX = 127


def quantize_int8(x: torch.Tensor, spec: QuantSpec, qmax: torch.Tensor | int | None = None) -> Quantized:
    """:func:`quantize` with dynamic scales, returning the same codes as ``int8`` in fewer passes.

    The hot path of every spiking product: the integer kernels take int8 codes. Same scale and zero point as
    :func:`quantize` (the same :func:`compute_scale`), and the same codes: rounding is monotone and the range
    ends are integers, so clamping before rounding equals clamping after; then for ``|u| <= 127``,
    ``trunc(u + sign(u) * c)`` with ``c`` the largest float below 1/2 is round-half-away exactly (a tie
    ``k + 1/2`` reaches ``k + 1`` because ``c`` is less than half an ulp below 1/2 there, and ``0.49999997``
    stays below 1, where ``u + 0.5`` would round up to 1), and the int8 cast truncates. Passes over ``x``:
    abs, amax, divide, (clamp,) sign, add, cast (``quantize`` makes about ten). ``qmax`` must not exceed 127.
    """
    xg = _grouped(x, spec)
    top = spec.qmax if qmax is None else (qmax if isinstance(qmax, int) else int(qmax.max()))
    if top > INT8_QMAX or (not spec.symmetric and spec.qmin < 0):
        raise ValueError(f"int8 codes need qmax <= {INT8_QMAX}; got {top} (use quantize)")
    scale, zero = compute_scale(xg, spec, qmax)
    u = to_units(xg, scale, zero)
    c = _BELOW_HALF[u.dtype]
    qm = spec.qmax if qmax is None else qmax
    lo = (-qm if spec.symmetric else 0) if not isinstance(qm, torch.Tensor) else \
        (-qm if spec.symmetric else torch.zeros_like(qm))
    if isinstance(qm, torch.Tensor):
        qm = qm.to(u.dtype)
        lo = lo.to(u.dtype)
    # The clamp is a no-op when the scale comes from x's own absmax (clip 1) and is a normal float: then
    # |u| <= q_max * (1 + 2**-22) and rounding stays <= q_max. Checked on CPU only (the check reads the scale).
    if not (spec.symmetric and spec.clip_ratio == 1.0 and u.device.type == "cpu"
            and bool(scale.amin() >= torch.finfo(scale.dtype).tiny)):
        u = u.clamp_(min=lo, max=qm)
    if spec.symmetric:
        u = u.add_(u.sign(), alpha=c)
    else:  # codes are >= 0 after the clamp: no sign to carry
        u = u.add_(c)
    return Quantized(q=u.to(torch.int8), scale=scale, zero=zero)


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | None = None) -> torch.Tensor:
    return (q if zero is None else q - zero) * scale


def fake_quantize(x: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """Quantize then dequantize, in ``x``'s shape and dtype: the ANN reference of the spiking model."""
    r = quantize(x, spec)
    return r.dequantize().reshape(x.shape).to(x.dtype)
