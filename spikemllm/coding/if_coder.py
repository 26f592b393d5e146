"""IF rate coding with soft reset: the integer ``q`` is ``|q|`` spikes of sign ``sign(q)``."""
from __future__ import annotations

from typing import Iterator

import torch

from .base import Coder


class IFCoder(Coder):
    """Integrate-and-fire rate coder.

    ``IFCoder(bits)`` (signed, ternary spikes) needs ``T = 2**(bits-1) - 1`` steps (7 for 4 bits);
    ``IFCoder(bits, signed=False)`` (binary spikes) needs ``T = 2**bits - 1`` (15 for 4 bits: the paper's
    rate-coded baseline). ``IFCoder(timesteps=T)`` sets ``T`` directly (``q_max = T``).
    """

    coding = "if"

    def __init__(self, bits: int | None = None, signed: bool = True, *, timesteps: int | None = None) -> None:
        super().__init__(bits, timesteps=timesteps, signed=signed)

    def qmax_for(self, timesteps: torch.Tensor | int) -> torch.Tensor | int:
        return timesteps

    def step_weights(self, t_max: int | None = None) -> list[int]:
        return [1] * (self.timesteps if t_max is None else t_max)

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
