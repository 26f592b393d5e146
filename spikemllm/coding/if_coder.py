"""IF rate coding with soft reset: the integer ``q`` is ``|q|`` spikes of sign ``sign(q)``."""
from __future__ import annotations

from typing import Iterator

import torch

from .base import Coder
from .registry import register_coder


@register_coder
class IFCoder(Coder):
    """Integrate-and-fire rate coder.

    ``IFCoder(bits)`` (signed, ternary spikes) needs ``T = 2**(bits-1) - 1`` steps (7 for 4 bits);
    ``IFCoder(bits, signed=False)`` (binary spikes) needs ``T = 2**bits - 1`` (15 for 4 bits: the paper's
    rate-coded baseline). ``IFCoder(timesteps=T)`` sets ``T`` directly (``q_max = T``).
    """

    coding = "if"
    radix = 1

    def __init__(self, bits: int | None = None, signed: bool = True, *, timesteps: int | None = None) -> None:
        super().__init__(bits, timesteps=timesteps, signed=signed)

    def spikes_per_step(self, q_abs: torch.Tensor, t_tok: torch.Tensor, t_max: int) -> torch.Tensor:
        # |q| spikes in the first steps of the token's window (which starts at t_max - T_i)
        local = torch.arange(t_max, device=q_abs.device).view(-1, 1) - (t_max - t_tok).view(1, -1)  # [T, N]
        return (q_abs.unsqueeze(0) > local.unsqueeze(-1)).sum(-1) * (local >= 0)

    def _encode(self, q: torch.Tensor, t: torch.Tensor, t_max: int) -> torch.Tensor:
        steps = torch.arange(t_max, device=q.device).view(-1, *([1] * q.dim()))
        local = steps - (t_max - t)               # step index inside the element's window
        fire = (local >= 0) & (local < q.abs())    # the first |q| steps of the window
        return fire.to(torch.int64) * torch.sign(q)

    def planes(self, q: torch.Tensor, t: torch.Tensor | int, t_max: int) -> Iterator[torch.Tensor]:
        left = q.abs()
        sg = torch.sign(q)
        start = t_max - t
        for step in range(t_max):
            fire = left > 0
            if isinstance(start, torch.Tensor):
                fire = fire & (start <= step)
            elif step < start:
                fire = torch.zeros_like(fire)
            f = fire.to(q.dtype)
            left = left - f
            yield f * sg
