"""A conventional integer multiply-accumulate PE, only as a yardstick for the spike PE's synthesis figures.

Why: "no multiplier" is the spike datapath's claim; synthesising both under the same flow shows what the
claim is worth in cells. ``acc <= (first ? 0 : acc) + sum_j w_j * x_j`` with signed ``act_bits`` activations:
one token per cycle, where the spike PE needs T cycles with ternary inputs.
"""
from __future__ import annotations

from amaranth.hdl import Module, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .rtl_pe import _tree_sum

__all__ = ["MacPE"]


class MacPE(wiring.Component):
    """``lanes`` signed weight x activation products summed into an accumulator of ``acc_bits``."""

    def __init__(self, *, weight_bits: int = 4, act_bits: int = 4, lanes: int = 1, acc_bits: int = 16):
        self.weight_bits, self.act_bits, self.lanes, self.acc_bits = weight_bits, act_bits, lanes, acc_bits
        super().__init__({
            "weights": In(data.ArrayLayout(signed(weight_bits), lanes)),
            "acts": In(data.ArrayLayout(signed(act_bits), lanes)),
            "valid": In(1),
            "first": In(1),
            "acc": Out(signed(acc_bits)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        partial = _tree_sum([self.weights[j] * self.acts[j] for j in range(self.lanes)])
        with m.If(self.valid):
            with m.If(self.first):
                m.d.sync += self.acc.eq(partial)
            with m.Else():
                m.d.sync += self.acc.eq(self.acc + partial)
        return m
