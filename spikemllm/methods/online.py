"""Online input transforms that methods put in front of a layer's activation quantizer.

* :class:`ChannelScale` -- ``x -> x * m`` per input channel: SmoothQuant's migration when no preceding norm or
  linear can absorb the factors (``m = 1/s``, the weight columns are multiplied by ``s``).
* :class:`Chain` -- several transforms in order, so composed methods (``["smoothquant", "rotation"]``) stack.

Both are :class:`~spikemllm.nn.transforms.InputTransform` subclasses: tensors live in buffers and construction
in a JSON spec, so a converted model saves and loads without pickling.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..nn.transforms import InputTransform, build_transform, register_transform, transform_spec


@register_transform
class ChannelScale(InputTransform):
    """Multiply the last dimension by a fixed per-channel vector (buffer ``mult``)."""

    kind = "channel-scale"

    def __init__(self, n: int, mult: torch.Tensor | None = None) -> None:
        super().__init__()
        self.n = int(n)
        m = torch.ones(self.n) if mult is None else mult.detach().reshape(-1).float()
        if m.numel() != self.n:
            raise ValueError(f"ChannelScale of size {self.n} got {m.numel()} factors")
        self.register_buffer("mult", m.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() * self.mult).to(x.dtype)

    def to_spec(self) -> dict[str, Any]:
        return {"n": self.n}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "ChannelScale":
        return cls(**spec)


@register_transform
class Chain(InputTransform):
    """Apply ``parts`` in order."""

    kind = "chain"

    def __init__(self, parts: list[nn.Module]) -> None:
        super().__init__()
        self.parts = nn.ModuleList(parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for p in self.parts:
            x = p(x)
        return x

    def to_spec(self) -> dict[str, Any]:
        return {"parts": [transform_spec(p) for p in self.parts]}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "Chain":
        return cls([build_transform(s) for s in spec["parts"]])


def then(first: nn.Module | None, second: nn.Module) -> nn.Module:
    """``second`` applied after ``first`` (which may be absent or already a chain)."""
    if first is None:
        return second
    parts = list(first.parts) if isinstance(first, Chain) else [first]
    return Chain(parts + [second])
