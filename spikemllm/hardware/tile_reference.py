"""Plain-numpy reference for the spike tile, and the cycle schedule a driver issues to it.

Kept free of Amaranth so the cycle model and tests can use it without the ``hw`` extra.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..costs import accumulator_bits  # re-exported: the RTL and the model size accumulators with it

__all__ = ["accumulator_bits", "horner_reference", "random_ternary_spikes", "SpikeCycle", "build_schedule", "nonzero_chunks_per_step"]


def _check_spikes(spikes: np.ndarray, cols: int) -> None:
    if spikes.ndim != 2 or spikes.shape[1] != cols or spikes.shape[0] < 1:
        raise ValueError(f"a token's spikes must have shape (T>=1, {cols}); got {spikes.shape}")
    if not np.isin(spikes, (-1, 0, 1)).all():
        raise ValueError("spikes must be ternary: values in {-1, 0, +1}")


def horner_reference(weights: np.ndarray, token_spikes: Sequence[np.ndarray]) -> np.ndarray:
    """``y_i = sum_t 2^(T_i-1-t) W s_{i,t}`` for each token i (its own T_i), in exact int64 arithmetic.

    weights: (rows, cols) signed integers; token_spikes: one (T_i, cols) ternary array per token.
    Returns (tokens, rows) int64.
    """
    w = np.asarray(weights, dtype=np.int64)
    out = np.zeros((len(token_spikes), w.shape[0]), dtype=np.int64)
    for i, s in enumerate(token_spikes):
        s = np.asarray(s, dtype=np.int64)
        _check_spikes(s, w.shape[1])
        T = s.shape[0]
        time_weights = 2 ** np.arange(T - 1, -1, -1, dtype=np.int64)  # MSB first
        out[i] = w @ (time_weights @ s)
    return out


def random_ternary_spikes(rng: np.random.Generator, timesteps: int, cols: int, firing_rate: float) -> np.ndarray:
    """(timesteps, cols) ternary spikes: nonzero with probability ``firing_rate``, sign +/- equally likely."""
    if not 0.0 <= firing_rate <= 1.0:
        raise ValueError(f"firing_rate must lie in [0, 1], got {firing_rate}")
    fire = rng.random((timesteps, cols)) < firing_rate
    sign = np.where(rng.random((timesteps, cols)) < 0.5, -1, 1)
    return (fire * sign).astype(np.int8)


@dataclass(frozen=True)
class SpikeCycle:
    """One issued cycle of the spike stream: which chunk, its +/- lane masks, and the control bits."""

    chunk: int
    pos: int
    neg: int
    first: bool
    shift: bool
    last: bool


def nonzero_chunks_per_step(spikes: np.ndarray, lanes: int) -> list[list[int]]:
    """For each timestep, the indices of chunks (``lanes`` columns each) that hold at least one spike."""
    T, cols = spikes.shape
    if cols % lanes:
        raise ValueError(f"cols ({cols}) must be a multiple of lanes ({lanes})")
    nz = np.asarray(spikes).reshape(T, cols // lanes, lanes).any(axis=2)
    return [list(np.flatnonzero(row)) for row in nz]


def build_schedule(token_spikes: Sequence[np.ndarray], lanes: int, chunks: int,
                   skip_zero_chunks: bool = True) -> list[SpikeCycle]:
    """The cycles a driver issues for a stream of tokens.

    Every timestep issues its chunks in order; with ``skip_zero_chunks`` an all-zero chunk is skipped, but a
    timestep always issues at least one cycle (chunk 0 if nothing fires) because that cycle carries the shift
    (or, for the token's first step, the load).
    """
    cycles: list[SpikeCycle] = []
    for s in token_spikes:
        s = np.asarray(s)
        _check_spikes(s, lanes * chunks)
        T = s.shape[0]
        nz = nonzero_chunks_per_step(s, lanes)
        for t in range(T):
            order = (nz[t] or [0]) if skip_zero_chunks else list(range(chunks))
            for p, c in enumerate(order):
                seg = s[t, c * lanes:(c + 1) * lanes]
                pos = sum(1 << j for j in range(lanes) if seg[j] == 1)
                neg = sum(1 << j for j in range(lanes) if seg[j] == -1)
                cycles.append(SpikeCycle(chunk=int(c), pos=pos, neg=neg, first=(t == 0 and p == 0),
                                         shift=(t > 0 and p == 0), last=(t == T - 1 and p == len(order) - 1)))
    return cycles
