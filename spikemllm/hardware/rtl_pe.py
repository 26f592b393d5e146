"""The processing element of the spike-driven datapath, in Amaranth HDL (0.5 API).

Why this shape: a spiking linear layer receives, per token, T ternary spike vectors s_t in {-1, 0, +1}
whose time weights are powers of two (bit-planes, MSB first). Its output is

    y = sum_t 2^(T-1-t) W s_t,

which in Horner form needs no multiplier at all: ``acc = 2*acc + W s_t``. ``W s_t`` itself is a sum of
weights gated by the spikes (add, subtract or skip), so one PE is a ternary-gated adder tree over ``lanes``
weights feeding a shift-and-add accumulator. A token with a smaller T simply issues fewer timesteps: its first
issued step loads the accumulator instead of shifting it, which is the same as starting later with leading
zero steps (the value stays LSB-aligned).

Control per valid cycle (the driver sets at most one of ``first`` / ``shift``):
  - ``first``: the token's first cycle:            acc <= partial
  - ``shift``: first cycle of a later timestep:    acc <= 2*acc + partial
  - neither:  a further chunk of the same timestep: acc <= acc + partial
The chunk case lets a PE with few lanes handle a wide fan-in over several cycles per timestep.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .tile_reference import accumulator_bits

__all__ = ["SpikePE", "accumulator_bits"]


def _tree_sum(values: list) -> object:
    """Balanced adder tree (depth log2 n rather than n), so synthesis sees the shape a real design would use."""
    while len(values) > 1:
        nxt = [values[i] + values[i + 1] for i in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values = nxt
    return values[0]


class SpikePE(wiring.Component):
    """A ternary-gated adder tree over ``lanes`` signed weights plus a Horner (shift-and-add) accumulator.

    Ports:
      weights   In  ``lanes`` x signed(weight_bits): the weights of this row for the current chunk
      spike_pos In  ``lanes`` bits: lane j carries a +1 spike
      spike_neg In  ``lanes`` bits: lane j carries a -1 spike (both bits set counts as 0)
      valid, first, shift  In: see the module docstring
      acc       Out signed(acc_bits): the accumulator register
    """

    def __init__(self, *, weight_bits: int = 4, lanes: int = 1, max_timesteps: int = 8, fan_in: int | None = None):
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        self.weight_bits = weight_bits
        self.lanes = lanes
        self.max_timesteps = max_timesteps
        self.fan_in = fan_in if fan_in is not None else lanes
        if self.fan_in < lanes:
            raise ValueError(f"fan_in ({self.fan_in}) must be >= lanes ({lanes})")
        self.acc_bits = accumulator_bits(weight_bits, max_timesteps, self.fan_in)
        super().__init__({
            "weights": In(data.ArrayLayout(signed(weight_bits), lanes)),
            "spike_pos": In(lanes),
            "spike_neg": In(lanes),
            "valid": In(1),
            "first": In(1),
            "shift": In(1),
            "acc": Out(signed(self.acc_bits)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        gated = []
        for j in range(self.lanes):
            w = self.weights[j]
            pos, neg = self.spike_pos[j], self.spike_neg[j]
            # +w, -w or 0: the only "multiplication" a ternary spike ever needs.
            gated.append(Mux(pos & ~neg, w, Mux(neg & ~pos, -w, 0)))
        partial = _tree_sum(gated)
        with m.If(self.valid):
            with m.If(self.first):
                m.d.sync += self.acc.eq(partial)
            with m.Elif(self.shift):
                m.d.sync += self.acc.eq((self.acc << 1) + partial)
            with m.Else():
                m.d.sync += self.acc.eq(self.acc + partial)
        return m
