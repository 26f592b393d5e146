"""An independent statement of the group summation order, shared by the group tests."""
from __future__ import annotations

import torch


def cascade_sum(x: torch.Tensor) -> torch.Tensor:
    """The stated group order, written independently of the library: one group at a time, running sums of 16
    folded into level 1, level 1 into level 2 every 256 groups, level 2 into 3 every 4096; leftovers; levels added."""
    g = x.shape[0]
    acc = [torch.zeros_like(x[0]) for _ in range(4)]
    full = g - g % 16
    for i in range(g):
        acc[0] = acc[0] + x[i]
        if i + 1 <= full and (i + 1) % 16 == 0:
            for lvl in range(1, 4):
                acc[lvl], acc[lvl - 1] = acc[lvl] + acc[lvl - 1], torch.zeros_like(acc[0])
                if (i + 1) % (16 ** (lvl + 1)):
                    break
    return acc[0] + acc[1] + acc[2] + acc[3]
