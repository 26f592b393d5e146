"""A parameterised tile of spike PEs in Amaranth HDL: ``y = sum_t 2^(T-1-t) W s_t`` for a W of rows x cols.

Why this shape: weights stay in the tile (weight-stationary) while spike vectors stream through, one chunk of
``lanes`` columns per cycle, broadcast to all ``rows`` PEs. A tile is ``rows`` x (``lanes`` * ``chunks``)
weights; a wider tile costs more cycles per timestep rather than more adders. The weight load port writes one
chunk of every row per cycle, so loading a tile takes ``chunks`` cycles. The result of a token appears one
cycle after its last spike cycle (``y_valid``); the next token may start in that same cycle, so tokens stream
back to back. Cycle counts are therefore simple and exact (see ``spikemllm.hardware.accel_model.tile_cycles``):

    load = chunks;  compute = (issued spike cycles of all tokens) + 1.

A driver may skip a chunk whose spikes are all zero, except that every timestep issues at least one cycle
(that cycle carries the shift); ``spikemllm.hardware.rtl_sim`` implements that schedule.
"""
from __future__ import annotations

from amaranth.hdl import Array, Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .rtl_pe import SpikePE, accumulator_bits

__all__ = ["SpikeTile"]


class SpikeTile(wiring.Component):
    """``rows`` SpikePEs sharing one spike stream, with a weight register file of rows x chunks x lanes.

    Ports:
      w_we, w_chunk, w_data (rows x lanes signed weights)   weight load, one chunk for all rows per cycle
      s_valid, s_first, s_shift, s_last, s_chunk, s_pos, s_neg   spike stream (see SpikePE for first/shift)
      y_valid, y (rows x signed(acc_bits))                   result of the token whose last cycle just ended
    """

    def __init__(self, *, rows: int = 4, lanes: int = 4, chunks: int = 1, weight_bits: int = 4, max_timesteps: int = 4):
        if rows < 1 or lanes < 1 or chunks < 1:
            raise ValueError(f"rows, lanes and chunks must be >= 1; got {rows}, {lanes}, {chunks}")
        self.rows, self.lanes, self.chunks = rows, lanes, chunks
        self.cols = lanes * chunks
        self.weight_bits = weight_bits
        self.max_timesteps = max_timesteps
        self.acc_bits = accumulator_bits(weight_bits, max_timesteps, self.cols)
        row_layout = data.ArrayLayout(signed(weight_bits), lanes)
        super().__init__({
            "w_we": In(1),
            "w_chunk": In(range(max(chunks, 2))),
            "w_data": In(data.ArrayLayout(row_layout, rows)),
            "s_valid": In(1),
            "s_first": In(1),
            "s_shift": In(1),
            "s_last": In(1),
            "s_chunk": In(range(max(chunks, 2))),
            "s_pos": In(lanes),
            "s_neg": In(lanes),
            "y_valid": Out(1),
            "y": Out(data.ArrayLayout(signed(self.acc_bits), rows)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        # weights[r][c][j]: row r, chunk c, lane j
        weights = [[[Signal(signed(self.weight_bits), name=f"w_r{r}_c{c}_l{j}") for j in range(self.lanes)]
                    for c in range(self.chunks)] for r in range(self.rows)]
        with m.If(self.w_we):
            for c in range(self.chunks):
                with m.If(self.w_chunk == c):
                    for r in range(self.rows):
                        for j in range(self.lanes):
                            m.d.sync += weights[r][c][j].eq(self.w_data[r][j])

        for r in range(self.rows):
            pe = SpikePE(weight_bits=self.weight_bits, lanes=self.lanes, max_timesteps=self.max_timesteps,
                         fan_in=self.cols)
            m.submodules[f"pe{r}"] = pe
            for j in range(self.lanes):
                if self.chunks == 1:
                    m.d.comb += pe.weights[j].eq(weights[r][0][j])
                else:
                    m.d.comb += pe.weights[j].eq(Array(weights[r][c][j] for c in range(self.chunks))[self.s_chunk])
            m.d.comb += [
                pe.spike_pos.eq(self.s_pos),
                pe.spike_neg.eq(self.s_neg),
                pe.valid.eq(self.s_valid),
                pe.first.eq(self.s_first),
                pe.shift.eq(self.s_shift),
                self.y[r].eq(pe.acc),
            ]
        m.d.sync += self.y_valid.eq(self.s_valid & self.s_last)
        return m
