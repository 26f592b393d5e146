"""TC-LIF: temporally compressed coding, the integer sent as signed bit-planes, most significant first."""
from __future__ import annotations

from typing import Iterator

import torch

from .base import Coder


class TCLIFCoder(Coder):
    """Temporally compressed LIF coder.

    Spike ``t`` of a ``T``-step train is worth ``2**(T-1-t)``; the threshold halves at every step and the soft
    reset subtracts it, so the membrane keeps exactly the not-yet-sent remainder. Symmetric ``b``-bit codes
    (``|q| <= 2**(b-1) - 1``) need ``T = b - 1`` steps: ``TCLIFCoder(4).timesteps == 3``. Decoding is Horner's
    rule ``acc = 2*acc + s_t``, which is what a spike-driven accumulator does with a shift between steps.
    """

    coding = "tc-lif"

    def __init__(self, bits: int | None = None, *, timesteps: int | None = None) -> None:
        super().__init__(bits, timesteps=timesteps, signed=True)

    def qmax_for(self, timesteps: torch.Tensor | int) -> torch.Tensor | int:
        if isinstance(timesteps, torch.Tensor):
            return torch.bitwise_left_shift(torch.ones_like(timesteps), timesteps) - 1
        return 2 ** timesteps - 1

    def step_weights(self, t_max: int | None = None) -> list[int]:
        t = self.timesteps if t_max is None else t_max
        return [2 ** (t - 1 - i) for i in range(t)]

    def _encode(self, q: torch.Tensor, t: torch.Tensor, t_max: int) -> torch.Tensor:
        shifts = torch.arange(t_max - 1, -1, -1, device=q.device).view(-1, *([1] * q.dim()))
        bits = torch.bitwise_and(torch.bitwise_right_shift(q.abs().unsqueeze(0), shifts), 1)
        return bits * torch.sign(q)

    def planes(self, q: torch.Tensor, t: torch.Tensor | int, t_max: int) -> Iterator[torch.Tensor]:
        # Elements with T_i < t_max have |q| < 2**T_i, so their early planes are zero by construction.
        left = q.abs()
        sg = torch.sign(q)
        for k in range(t_max - 1, -1, -1):
            theta = float(2 ** k) if q.is_floating_point() else 2 ** k  # int8 codes stay int8 (<= 64)
            b = (left >= theta).to(q.dtype)
            left = left - b * theta
            yield b * sg
