"""Spike coders: neurons that emit a quantizer's integer codes over time.

A coder is a small ``nn.Module`` with no learned state. It offers three views of one neuron:

* ``encode(q)``: the spike train for integer codes ``q`` (fast, closed form);
* ``decode(spikes)``: the integer the train carries (``sum_t w_t s_t``);
* ``simulate(u)``: the neuron itself, step by step, from its real-valued input ``u = x / scale``:
  **charge** (the input current enters the membrane when the neuron's window opens), **fire** (a spike of
  the latched polarity when the membrane reaches ``theta_t - 1/2``), **soft reset** (subtract ``theta_t``).

``simulate(u) == encode(quantize(u))`` for every input, ties and clipping included: the half-threshold
offset realises round-half-away-from-zero (:mod:`spikemllm.quant.rounding`), and saturating after ``T`` steps
realises clipping. Tests guard this.

Per-token timesteps: ``timesteps`` may be a tensor broadcastable to the input giving each element its own
``T_i <= T_max``. Trains always have ``T_max`` steps; an element with ``T_i`` is silent for the first
``T_max - T_i`` steps and uses the last ``T_i`` (least significant bits aligned), so ``decode`` never needs
to know ``T_i``.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch import nn

from ..levels import LevelSpec, level_spec
from ..quant.rounding import check_finite


class Coder(nn.Module):
    """Base class; subclasses define the threshold schedule and the closed-form ``encode``."""

    coding: str = ""

    def __init__(self, bits: int | None = None, *, timesteps: int | None = None, signed: bool = True) -> None:
        super().__init__()
        if bits is None and timesteps is None:
            raise ValueError("a coder needs bits= or timesteps=")
        self.spec: LevelSpec = level_spec(self.coding, bits=bits, timesteps=timesteps, signed=signed)

    # --- the numbers -----------------------------------------------------------------------------------
    @property
    def timesteps(self) -> int:
        return self.spec.timesteps

    @property
    def bits(self) -> int:
        return self.spec.bits

    @property
    def signed(self) -> bool:
        return self.spec.signed

    @property
    def qmax(self) -> int:
        return self.spec.qmax

    def qmax_for(self, timesteps: torch.Tensor | int) -> torch.Tensor | int:
        """Largest code an element with ``timesteps`` steps can carry (vectorised ``level_spec``)."""
        raise NotImplementedError

    def step_weights(self, t_max: int | None = None) -> list[int]:
        """Weight of each timestep's spike in ``decode`` (1 for rate coding, ``2**(T-1-t)`` for TC-LIF)."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"bits={self.bits}, timesteps={self.timesteps}, signed={self.signed}"

    # --- helpers ---------------------------------------------------------------------------------------
    def _per_element_t(self, like: torch.Tensor, timesteps: torch.Tensor | int | None
                       ) -> tuple[torch.Tensor, int]:
        if timesteps is None:
            return torch.full((), self.timesteps, dtype=torch.int64, device=like.device), self.timesteps
        t = torch.as_tensor(timesteps, device=like.device).to(torch.int64)
        if t.numel() == 0:
            raise ValueError("timesteps is empty")
        lo, hi = int(t.min()), int(t.max())
        if lo < 1 or hi > self.timesteps:
            raise ValueError(f"per-element timesteps must lie in 1..{self.timesteps} for this coder; got {lo}..{hi}")
        return t, hi

    def _check_codes(self, q: torch.Tensor, t: torch.Tensor) -> None:
        check_finite(q, "codes")
        if not bool((q == torch.round(q)).all()) if q.is_floating_point() else False:
            raise ValueError("codes must be integers; quantize first (spikemllm.quant.quantize)")
        qmax = self.qmax_for(t)
        qmin = -qmax if self.signed else 0
        if bool((q > qmax).any()) or bool((q < qmin).any()):
            raise ValueError(f"codes out of range for {type(self).__name__}({self.extra_repr()}): "
                             f"allowed values {qmin}..{qmax} at each element's timesteps")

    # --- the three views -------------------------------------------------------------------------------
    def encode(self, q: torch.Tensor, timesteps: torch.Tensor | int | None = None, *, check: bool = True,
               dtype: torch.dtype = torch.int8) -> torch.Tensor:
        """Spike train ``[T_max, *q.shape]`` in {-1, 0, 1} (signed) or {0, 1} (unsigned)."""
        t, t_max = self._per_element_t(q, timesteps)
        if check:
            self._check_codes(q, t)
        return self._encode(q.to(torch.int64), t, t_max).to(dtype)

    def _encode(self, q: torch.Tensor, t: torch.Tensor, t_max: int) -> torch.Tensor:
        raise NotImplementedError

    def planes(self, q: torch.Tensor, t: torch.Tensor | int, t_max: int) -> Iterator[torch.Tensor]:
        """Yield the spike planes of integer-valued float codes ``q`` one step at a time, in ``q``'s dtype.

        The hot path of :class:`~spikemllm.nn.SpikeLinear`'s faithful mode: no ``[T, ...]`` tensor is built
        and no integer conversion is made. Equal to ``encode`` (a test checks it).
        """
        raise NotImplementedError

    def decode(self, spikes: torch.Tensor) -> torch.Tensor:
        """Integer codes (int64) carried by a train ``[T, ...]``."""
        w = self.step_weights(spikes.shape[0])
        out = torch.zeros(spikes.shape[1:], dtype=torch.int64, device=spikes.device)
        for s, wt in zip(spikes, w):
            out = out + wt * s.to(torch.int64)
        return out

    def thresholds(self, t_max: int) -> list[float]:
        """Threshold ``theta_t`` at each step: what one spike is worth and what a soft reset subtracts."""
        return [float(w) for w in self.step_weights(t_max)]

    def simulate(self, u: torch.Tensor, timesteps: torch.Tensor | int | None = None) -> torch.Tensor:
        """Step-by-step neuron dynamics from real input ``u``; returns int8 spikes ``[T_max, *u.shape]``.

        charge: ``v += I_t`` with ``I_t = |u|`` when the element's window opens, else 0;
        fire:   ``s_t = p`` if ``v >= theta_t - 1/2`` (``p = sign(u)`` latched at charge; unsigned coders
                never fire for ``u < 0``);
        reset:  ``v -= theta_t`` for each spike (soft reset).
        """
        check_finite(u, "neuron input u")
        t, t_max = self._per_element_t(u, timesteps)
        uf = u.to(torch.float64)  # exact widening: every subtraction below is exact
        pol = torch.sign(uf) if self.signed else (uf > 0).to(torch.float64)
        mag = uf.abs()
        start = t_max - t  # first step of each element's window
        v = torch.zeros_like(uf)
        out = torch.zeros((t_max, *u.shape), dtype=torch.int8, device=u.device)
        for step, theta in enumerate(self.thresholds(t_max)):
            v = v + torch.where(start == step, mag, torch.zeros_like(mag))   # charge
            fire = (v >= theta - 0.5) & (start <= step) & (pol != 0)       # fire
            v = v - fire.to(v.dtype) * theta                                # soft reset
            out[step] = (fire.to(torch.float64) * pol).to(torch.int8)
        return out
