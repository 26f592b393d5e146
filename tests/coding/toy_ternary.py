"""A toy third coder, the whole of it in one file: balanced-ternary spikes.

Spike ``t`` of a ``T``-step train is worth ``3**(T-1-t)`` and may be -1, 0 or +1 whatever the sign of the code
(balanced ternary: 5 = +1 -1 -1, i.e. 9 - 3 - 1). ``T`` steps carry ``|q| <= (3**T - 1) / 2``: 2 steps hold
3-bit codes, 3 steps hold 5-bit codes (TC-LIF: 4 bits). Only what a coder must say is here: its name, its radix, and
how a code becomes spike planes; levels, step weights, Horner accumulation, spike counts and the config all
follow from the base class and the registry.
"""
from __future__ import annotations

from typing import Iterator

import torch

from spikemllm.coding import Coder


class BalancedTernaryCoder(Coder):
    coding = "toy-ternary"
    radix = 3

    def _digits(self, q: torch.Tensor, t_max: int) -> list[torch.Tensor]:
        """Balanced-ternary digits of ``q``, most significant first (``t_max`` of them)."""
        out, rest = [], q.clone()
        for _ in range(t_max):
            d = torch.remainder(rest + 1, 3) - 1           # -1, 0 or 1 with rest = 3 * k + d
            out.append(d)
            rest = (rest - d) // 3
        return out[::-1]

    def _encode(self, q: torch.Tensor, t: torch.Tensor, t_max: int) -> torch.Tensor:
        return torch.stack(self._digits(q, t_max))

    def planes(self, q: torch.Tensor, t: torch.Tensor | int, t_max: int) -> Iterator[torch.Tensor]:
        for d in self._digits(q.to(torch.int64), t_max):
            yield d.to(q.dtype)

    def simulate(self, u: torch.Tensor, timesteps: torch.Tensor | int | None = None) -> torch.Tensor:
        raise NotImplementedError("the toy coder has no neuron model")
