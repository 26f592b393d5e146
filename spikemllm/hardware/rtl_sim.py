"""Simulate the Amaranth spike tile on concrete weights and spikes, and count its cycles.

Why: the testbench is the bridge between the RTL and everything above it. It proves the tile computes the
numpy reference exactly, and its cycle counts calibrate (and test) the accelerator's cycle model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from amaranth.sim import Simulator

from .rtl_tile import SpikeTile
from .tile_reference import build_schedule

__all__ = ["TileRun", "simulate_tile"]


@dataclass(frozen=True)
class TileRun:
    """What one simulated tile run produced.

    y: (tokens, rows) int64 outputs read from the RTL; load_cycles: cycles spent writing weights;
    compute_cycles: from the first spike cycle to the cycle in which the last token's y is valid (inclusive);
    issued_cycles: spike cycles issued by the driver.
    """

    y: np.ndarray
    load_cycles: int
    compute_cycles: int
    issued_cycles: int

    @property
    def total_cycles(self) -> int:
        return self.load_cycles + self.compute_cycles


def simulate_tile(weights: np.ndarray, token_spikes: Sequence[np.ndarray], *, lanes: int, weight_bits: int = 4,
                  max_timesteps: int | None = None, skip_zero_chunks: bool = True) -> TileRun:
    """Load ``weights`` (rows x cols, cols a multiple of ``lanes``) into a SpikeTile and stream the tokens.

    Each token is a (T_i, cols) ternary array; T_i may differ per token (up to ``max_timesteps``).
    """
    w = np.asarray(weights, dtype=np.int64)
    rows, cols = w.shape
    if cols % lanes:
        raise ValueError(f"cols ({cols}) must be a multiple of lanes ({lanes})")
    lo, hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    if w.min() < lo or w.max() > hi:
        raise ValueError(f"weights must fit signed {weight_bits} bits [{lo}, {hi}]")
    chunks = cols // lanes
    T_max = max_timesteps if max_timesteps is not None else max(int(np.asarray(s).shape[0]) for s in token_spikes)
    if any(np.asarray(s).shape[0] > T_max for s in token_spikes):
        raise ValueError(f"a token has more than max_timesteps={T_max} steps")
    schedule = build_schedule(token_spikes, lanes, chunks, skip_zero_chunks=skip_zero_chunks)  # validates spikes
    dut = SpikeTile(rows=rows, lanes=lanes, chunks=chunks, weight_bits=weight_bits, max_timesteps=T_max)
    outputs: list[list[int]] = []
    counts = {"load": 0, "compute": 0}

    async def bench(ctx) -> None:
        ctx.set(dut.w_we, 1)
        for c in range(chunks):
            ctx.set(dut.w_chunk, c)
            ctx.set(dut.w_data, [[int(v) for v in w[r, c * lanes:(c + 1) * lanes]] for r in range(rows)])
            await ctx.tick()
            counts["load"] += 1
        ctx.set(dut.w_we, 0)
        for cyc in schedule:
            ctx.set(dut.s_valid, 1)
            ctx.set(dut.s_chunk, cyc.chunk)
            ctx.set(dut.s_pos, cyc.pos)
            ctx.set(dut.s_neg, cyc.neg)
            ctx.set(dut.s_first, int(cyc.first))
            ctx.set(dut.s_shift, int(cyc.shift))
            ctx.set(dut.s_last, int(cyc.last))
            await ctx.tick()
            counts["compute"] += 1
            if ctx.get(dut.y_valid):  # the token that ended in the cycle just past
                outputs.append([int(ctx.get(dut.y[r])) for r in range(rows)])
        ctx.set(dut.s_valid, 0)
        counts["compute"] += 1  # the cycle in which the last y is presented

    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
    if len(outputs) != len(token_spikes):
        raise RuntimeError(f"tile produced {len(outputs)} results for {len(token_spikes)} tokens")
    return TileRun(y=np.array(outputs, dtype=np.int64).reshape(len(token_spikes), rows), load_cycles=counts["load"],
                   compute_cycles=counts["compute"], issued_cycles=len(schedule))
