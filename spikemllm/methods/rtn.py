"""RTN: round-to-nearest weights with the shared rounding rule; no calibration."""
from __future__ import annotations

from ..calibrate.offload import read_param
from ..quant import quantize
from .base import Method, QuantContext, declare_method


@declare_method("rtn", "weights")
class RTN(Method):
    def apply(self, ctx: QuantContext) -> None:
        spec = ctx.weight_spec()
        for name, lin in ctx.targets.items():
            if name not in ctx.weights:
                ctx.weights[name] = quantize(read_param(lin, "weight").float(), spec)
