"""The one summation order for per-group partial products, in torch ops.

A layer with activation (or weight) groups produces one float partial per group and sums them over the groups. Float
addition is not associative, so "the same outputs bit for bit" across backends, modes and kernels needs one order.
It is torch's own CPU order for ``x.sum(0)`` over a contiguous ``[G, ...]`` float tensor (its vectorised path:
``aten/src/ATen/native/cpu/SumKernel.cpp``, ``multi_row_sum``), which the engine used before the integer kernels, so
earlier results are reproduced: running sums over ``step`` consecutive groups (``step = 16`` below ``2**20``
groups), each folded into a higher level, those folded again every ``step**2`` groups, the leftover groups summed
last, then the levels added together. Written out here because ``x.sum(0)`` itself takes a different order for
some output columns (a tail narrower than its vector tiles, which depends on the thread split), and because the
native kernel (:mod:`spikemllm.nn.native`) reproduces this order and must agree everywhere.
"""
from __future__ import annotations

import torch

LEVELS = 4


def cascade_step(groups: int) -> tuple[int, int]:
    """``(power, step)`` of the cascade for ``groups`` summands: ``step = 2**power``."""
    ceil_log2 = 1 if groups <= 2 else (groups - 1).bit_length()
    power = max(4, ceil_log2 // LEVELS)
    return power, 1 << power


def ordered_group_sum(x: torch.Tensor) -> torch.Tensor:
    """``x.sum(0)`` for float ``x [G, ...]`` in the cascade order above, as a fresh tensor (``x`` is not changed).

    Every accumulator of the cascade starts at +0.0, so it can never hold -0.0 (``+0 + -0 = +0`` and exact
    cancellation rounds to +0): adding an untouched (zero) level changes nothing and is skipped, and a level's first
    addend is taken as it is after one ``+ 0.0`` (which turns a -0.0 into +0.0, as ``0 + x`` would).
    """
    g = x.shape[0]
    power, step = cascade_step(g)
    mask = step - 1
    acc: list[torch.Tensor | None] = [None] * LEVELS  # None: still +0.0

    def add(lvl: int, value: torch.Tensor) -> None:
        acc[lvl] = value if acc[lvl] is None else acc[lvl].add_(value)

    full = g - g % step
    if full:
        blocks = x[:full].reshape(full // step, step, *x.shape[1:])
        sums = blocks[:, 0] + 0.0  # every block's running sum at once: ((0 + x0) + x1) + ...
        for j in range(1, step):
            sums.add_(blocks[:, j])
        for b in range(full // step):
            i = (b + 1) * step
            add(1, sums[b])  # level 0 is folded into level 1 and restarts at zero
            for lvl in range(2, LEVELS):
                if i & (mask << ((lvl - 1) * power)):
                    break
                add(lvl, acc[lvl - 1])
                acc[lvl - 1] = None
    if full < g:
        acc[0] = x[full] + 0.0
        for r in range(full + 1, g):
            acc[0].add_(x[r])
    out = acc[0]
    for lvl in range(1, LEVELS):
        if acc[lvl] is not None:
            out = acc[lvl].clone() if out is None else out.add_(acc[lvl])
    return out
