"""GPTQ (Frantar et al., 2022): weight codes chosen column by column to cancel the error already made.

Why: rounding each weight to the nearest code (RTN) ignores that input channels are correlated and unequally
large; GPTQ minimises the layer's output error ``||X W^T - X Q^T||^2`` instead. Quantizing column ``i`` leaves
an error ``e = (w_i - q_i) / [H^-1]_ii``; subtracting ``e [H^-1]_i,j`` from the later columns ``j`` is the
optimal (OBS) compensation, with ``H = X^T X`` from the calibration inputs. Updates are applied lazily per block
of columns (one rank-``blocksize`` update for the rest of the matrix), on the upper Cholesky factor of ``H^-1``.

Options (``method_options={"gptq": {...}}``):

* ``percdamp`` (0.01): ``lambda = percdamp * mean(diag H)`` is added to the diagonal (dampening; makes the
  Cholesky factorisation exist when ``H`` is near singular);
* ``blocksize`` (128): columns per lazy update;
* ``act_order`` (False): quantize columns in order of decreasing ``diag H`` (largest inputs first, while the
  most freedom is left to compensate). With per-group weights the groups stay consecutive *original* columns
  (what :class:`~spikemllm.SpikeLinear` stores), so their scales are fixed from the float weights up front;
* ``scale_search`` (0): with ``k > 0``, each row/group scale is the best of ``k`` shrunk abs-max scales
  (:func:`search_scale`), clipping outlier weights when that lowers the rounding error;
* ``sequential`` (True): write the dequantized weights back so later blocks are calibrated on the outputs of
  the already-quantized ones, as in the GPTQ paper.

Codes come from :func:`spikemllm.quant.quantize` (one rounding rule, symmetric range of ``weight_bits``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..calibrate import BlockGroup, read_param, run_blockwise, write_param
from ..errors import ConfigError
from ..quant import QuantSpec, Quantized, compute_scale, quantize
from .base import Method, QuantContext, declare_method


def search_scale(w: torch.Tensor, spec: QuantSpec, grid: int = 0) -> torch.Tensor:
    """Scale ``[..., 1]`` for rows of ``w`` ``[..., k]``: the abs-max scale, or with ``grid > 0`` the one among
    ``abs-max * (1 - i/(2*grid))``, ``i < grid``, with the least ``sum |w - q(w)|**2.4`` (clipping a few large
    weights often lowers the error of all the others, as in GPTQ's reference quantizer)."""
    plain = QuantSpec(spec.bits, True, "per-channel")
    best, _ = compute_scale(w, plain)
    if grid <= 0:
        return best
    best_err = torch.full(best.shape, float("inf"))
    for i in range(grid):
        s = compute_scale(w, plain)[0] * (1 - i / (2 * grid))
        err = (quantize(w, plain, scale=s).dequantize() - w).abs().pow(2.4).sum(-1, keepdim=True)
        better = err < best_err
        best, best_err = torch.where(better, s, best), torch.where(better, err, best_err)
    return best


def _scales(w: torch.Tensor, spec: QuantSpec, grid: int = 0) -> torch.Tensor:
    """Per-column scale ``[out, in]`` (each column's row/group scale) from the float weight ``w`` ``[out, in]``."""
    out, n = w.shape
    if spec.granularity == "per-group":
        s = search_scale(w.reshape(out, n // spec.group_size, spec.group_size), spec, grid)
        return s.expand(out, n // spec.group_size, spec.group_size).reshape(out, n)
    return search_scale(w, spec, grid).expand(out, n)


def gptq_quantize(w: torch.Tensor, h: torch.Tensor, spec: QuantSpec, *, percdamp: float = 0.01,
                  blocksize: int = 128, act_order: bool = False, scale_search: int = 0) -> Quantized:
    """GPTQ codes for ``w`` ``[out, in]`` given the input Hessian ``h`` ``[in, in]``; returns :class:`Quantized`
    shaped like ``quantize(w, spec)`` (per-group: ``q [out, G, gs]``, ``scale [out, G, 1]``)."""
    out, n = w.shape
    assert h.shape == (n, n), f"Hessian {tuple(h.shape)} does not match weight {tuple(w.shape)}"
    if spec.granularity == "per-group" and n % spec.group_size:
        raise ConfigError(f"group_size={spec.group_size} does not divide in_features={n}; choose a divisor")
    grouped = spec.granularity == "per-group"
    w, h = w.clone().float(), h.clone().float()
    dead = torch.diagonal(h) == 0                    # inputs that never fired: nothing to compensate with
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    perm = torch.argsort(torch.diagonal(h), descending=True) if act_order else torch.arange(n)
    static = _scales(w, spec, scale_search) if (act_order or not grouped) else None  # [out, in], original order
    w, h = w[:, perm], h[perm][:, perm]
    h += percdamp * torch.diagonal(h).mean() * torch.eye(n)
    hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    col_scale = torch.empty(out, n)                  # scale used for each (permuted) column
    q = torch.empty(out, n)
    for i1 in range(0, n, blocksize):
        i2 = min(i1 + blocksize, n)
        w1, err1, hinv1 = w[:, i1:i2].clone(), torch.zeros(out, i2 - i1), hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            c = i1 + i
            if static is not None:
                s = static[:, perm[c]]
            else:                                    # dynamic groups: scale from the updated weights
                if c % spec.group_size == 0:
                    g = torch.cat([w1[:, i:], w[:, i2:]], dim=1)[:, :spec.group_size]
                    s_group = search_scale(g, spec, scale_search)
                s = s_group.reshape(out)
            qc = quantize(w1[:, i:i + 1], QuantSpec(spec.bits, True, "per-channel"), scale=s.unsqueeze(1)).q[:, 0]
            q[:, c], col_scale[:, c] = qc, s
            e = (w1[:, i] - qc * s) / hinv1[i, i]
            w1[:, i:] -= e.unsqueeze(1) * hinv1[i, i:].unsqueeze(0)
            err1[:, i] = e
        w[:, i2:] -= err1 @ hinv[i1:i2, i2:]
    inv = torch.argsort(perm)
    q, col_scale = q[:, inv], col_scale[:, inv]
    if grouped:
        gs = spec.group_size
        return Quantized(q.reshape(out, n // gs, gs), col_scale.reshape(out, n // gs, gs)[:, :, :1].contiguous(), None)
    return Quantized(q, col_scale[:, :1].contiguous(), None)


@dataclass(frozen=True)
class GPTQOptions:
    """``method_options={"gptq": {...}}`` (see the module docstring)."""

    percdamp: float = 0.01
    blocksize: int = 128
    act_order: bool = False
    scale_search: int = 0
    sequential: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        if self.percdamp < 0 or self.blocksize < 1 or self.scale_search < 0:
            raise ValueError(f"percdamp={self.percdamp}, blocksize={self.blocksize}, scale_search="
                             f"{self.scale_search} are out of range; allowed: percdamp >= 0, blocksize >= 1, "
                             "scale_search >= 0")


@declare_method("gptq", "weights", GPTQOptions, needs_calibration=True)
class GPTQ(Method):
    def apply(self, ctx: QuantContext) -> None:
        o = vars(self.opts)
        spec = ctx.weight_spec()
        names = [n for n in ctx.targets if n not in ctx.weights]

        def on_group(group: BlockGroup) -> bool:
            for name in group.names:
                lin = ctx.targets[name]
                w = read_param(lin, "weight").float()
                qz = gptq_quantize(w, group.stats[name].hessian().cpu(), spec, percdamp=o["percdamp"],
                                   blocksize=o["blocksize"], act_order=o["act_order"],
                                   scale_search=o["scale_search"])
                ctx.weights[name] = qz
                if o["sequential"]:
                    write_param(lin, "weight", qz.dequantize().reshape(w.shape))
            return bool(o["sequential"])

        run_blockwise(ctx, names, ("hessian",), on_group, desc="gptq", progress=o["progress"])
