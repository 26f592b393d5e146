"""Per-Linear input statistics gathered by forward pre-hooks, and the hooks that apply online transforms.

Statistics are taken on the input *as the layer's weight sees it*: the hooks that apply ``ctx.input_transforms``
run first (they are registered first, and PyTorch calls pre-hooks in registration order), so a Hessian collected
after a rotation is in the rotated basis of the rotated weight.

* ``absmax``: ``max |x|`` per input channel (SmoothQuant's activation range);
* ``hessian``: ``X^T X / N`` over the ``N`` tokens seen (GPTQ's layer-wise Hessian, up to the factor 2).

Padding tokens are skipped when the batch's ``attention_mask`` has the layer input's leading shape.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import torch
from torch import nn

NEEDS = ("absmax", "hessian")


@dataclass
class LinearStats:
    """Running statistics of one layer's inputs (float32, on the device the inputs came from)."""

    in_features: int
    tokens: int = 0
    absmax: torch.Tensor | None = None
    xtx: torch.Tensor | None = None

    def add(self, x: torch.Tensor, needs: Iterable[str]) -> None:
        x = x.detach().reshape(-1, self.in_features).float()
        if x.shape[0] == 0:
            return
        if "absmax" in needs:
            a = x.abs().amax(dim=0)
            self.absmax = a if self.absmax is None else torch.maximum(self.absmax, a)
        if "hessian" in needs:
            h = x.t() @ x
            self.xtx = h if self.xtx is None else self.xtx.add_(h)
        self.tokens += x.shape[0]

    def hessian(self) -> torch.Tensor:
        """``X^T X / N`` (``[in, in]``)."""
        if self.xtx is None or self.tokens == 0:
            raise ValueError("no Hessian was collected for this layer; calibrate with needs=('hessian',)")
        return self.xtx / self.tokens


class StatsHooks:
    """Context manager: pre-hooks on ``modules`` (name -> nn.Linear) that fill :attr:`stats`.

    Set :attr:`token_mask` (bool ``[B, S]``) before each batch to skip padding tokens.
    """

    def __init__(self, modules: dict[str, nn.Module], needs: Iterable[str]) -> None:
        self.needs = tuple(needs)
        bad = [n for n in self.needs if n not in NEEDS]
        if bad:
            raise ValueError(f"unknown statistics {bad}; allowed: {', '.join(NEEDS)}")
        self.modules = modules
        self.stats: dict[str, LinearStats] = {n: LinearStats(m.in_features) for n, m in modules.items()}
        self.token_mask: torch.Tensor | None = None
        self._handles: list[Any] = []

    def _hook(self, name: str):
        def pre(module: nn.Module, args: tuple) -> None:
            x = args[0]
            m = self.token_mask
            if m is not None and tuple(x.shape[:-1]) == tuple(m.shape):
                x = x[m.to(x.device).bool()]
            self.stats[name].add(x, self.needs)
        return pre

    def __enter__(self) -> "StatsHooks":
        self._handles = [m.register_forward_pre_hook(self._hook(n)) for n, m in self.modules.items()]
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def seen(self) -> dict[str, LinearStats]:
        """Statistics of the layers that received at least one token."""
        return {n: s for n, s in self.stats.items() if s.tokens > 0}


@contextlib.contextmanager
def transform_hooks(targets: dict[str, nn.Module], transforms: dict[str, nn.Module]) -> Iterator[None]:
    """While active, each target's input goes through ``transforms[name]`` (looked up at call time, so methods
    may add transforms mid-calibration) -- the float model then computes what the transformed weights expect."""
    def make(name: str):
        def pre(module: nn.Module, args: tuple) -> tuple | None:
            t = transforms.get(name)
            return None if t is None else (t(args[0]), *args[1:])
        return pre
    handles = [m.register_forward_pre_hook(make(n), prepend=True) for n, m in targets.items()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
