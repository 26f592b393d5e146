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

from dataclasses import dataclass
from typing import ClassVar, Iterator

import torch
from torch import nn

from ..errors import ConfigError
from ..quant.quantizer import int_range
from ..quant.rounding import check_finite


@dataclass(frozen=True)
class LevelSpec:
    """Integer range and timesteps of one coder setting."""

    coding: str
    signed: bool
    bits: int
    timesteps: int
    qmin: int
    qmax: int

    @property
    def levels(self) -> int:
        """Number of distinct integer codes the coder can emit."""
        return self.qmax - self.qmin + 1


class Coder(nn.Module):
    """Base class. A coder is defined by its name, its radix and three small rules; everything else follows.

    * ``coding``: the registry name (``SpikeConfig.coder``);
    * ``radix``: what one step is worth relative to the next. ``1`` is rate coding (every spike worth 1, steps
      summed); ``r > 1`` is positional coding, most significant step first (spike ``t`` of ``T`` worth
      ``r**(T-1-t)``, steps combined by Horner's rule ``acc = r*acc + part``): TC-LIF has ``r = 2``;
    * ``signed_only``: the coder has no unsigned (binary-spike) form;
    * ``max_steps``: a hard limit on the timesteps, or None.

    From these: the largest code in ``T`` steps (:meth:`qmax_at`), the timesteps ``b``-bit codes need
    (:meth:`steps_for_bits`), the bits ``T`` steps carry (:meth:`bits_for_steps`), the weight of each step
    (:meth:`step_weights`), how a spike-driven accumulator combines steps (:meth:`combine_`) and how many
    spikes each step carries (:meth:`spikes_per_step`). A new coder is one file: a subclass with these class
    attributes and ``_encode``/``planes``, registered with :func:`spikemllm.coding.register_coder`.
    """

    coding: ClassVar[str] = ""
    radix: ClassVar[int] = 1
    signed_only: ClassVar[bool] = False
    max_steps: ClassVar[int | None] = None

    def __init__(self, bits: int | None = None, *, timesteps: int | None = None, signed: bool = True) -> None:
        super().__init__()
        if bits is None and timesteps is None:
            raise ValueError("a coder needs bits= or timesteps=")
        self.spec: LevelSpec = self.level_spec(bits=bits, timesteps=timesteps, signed=signed)

    # --- the numbers, per coder class ------------------------------------------------------------------
    @classmethod
    def check_signed(cls, signed: bool) -> None:
        if cls.signed_only and not signed:
            raise ConfigError(f"signed=False is not supported for coding={cls.coding!r}; allowed: signed=True "
                              "(use 'if' for unsigned codes)")

    @classmethod
    def qmax_at(cls, timesteps: int) -> int:
        """Largest code ``T`` steps carry: ``T`` for rate coding, ``(r**T - 1) / (r - 1)`` for radix ``r``."""
        return timesteps if cls.radix == 1 else (cls.radix ** timesteps - 1) // (cls.radix - 1)

    @classmethod
    def steps_for_bits(cls, bits: int, signed: bool = True) -> int:
        """Fewest timesteps that carry every ``bits``-bit code (4 bits: 7 for signed IF, 3 for TC-LIF)."""
        top = int_range(bits, signed)[1]
        if cls.radix == 1:
            return top
        t = 1
        while cls.qmax_at(t) < top:
            t += 1
        return t

    @classmethod
    def bits_for_steps(cls, timesteps: int, signed: bool = True) -> int:
        """Smallest code width that holds every code ``timesteps`` steps carry."""
        top = cls.qmax_at(timesteps)
        return max(2, top.bit_length() + (1 if signed else 0))

    @classmethod
    def max_timesteps(cls, signed: bool = True, max_bits: int = 8) -> int:
        """Most timesteps worth running: the coder's hard limit, else the steps of ``max_bits``-bit codes."""
        return cls.max_steps if cls.max_steps is not None else cls.steps_for_bits(max_bits, signed)

    @classmethod
    def level_spec(cls, *, bits: int | None = None, timesteps: int | None = None, signed: bool = True) -> LevelSpec:
        """Integer range and timesteps given exactly one of ``bits`` or ``timesteps`` (see :mod:`spikemllm.levels`)."""
        cls.check_signed(signed)
        if (bits is None) == (timesteps is None):
            raise ValueError("level_spec needs exactly one of bits= or timesteps=")
        top = None
        if bits is not None:
            top = int_range(bits, signed)[1]  # validates bits; the codes are bits-bit codes
            t = cls.steps_for_bits(bits, signed)
        else:
            t = timesteps
            if isinstance(t, bool) or not isinstance(t, int) or t < 1:
                raise ValueError(f"timesteps={t!r} is out of range; allowed values: integers >= 1")
            if cls.max_steps is not None and t > cls.max_steps:
                raise ValueError(f"timesteps={t} is out of range for {cls.coding}; allowed values: "
                                 f"1..{cls.max_steps}")
            bits = cls.bits_for_steps(t, signed)
        qmax = cls.qmax_at(t) if top is None else min(top, cls.qmax_at(t))
        return LevelSpec(coding=cls.coding, signed=signed, bits=bits, timesteps=t, qmin=-qmax if signed else 0,
                         qmax=qmax)

    # --- the numbers, per instance ---------------------------------------------------------------------
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
        """Largest code an element with ``timesteps`` steps can carry (:meth:`qmax_at`, vectorised)."""
        if not isinstance(timesteps, torch.Tensor):
            return self.qmax_at(timesteps)
        if self.radix == 1:
            return timesteps
        return (torch.pow(torch.full_like(timesteps, self.radix), timesteps) - 1) // (self.radix - 1)

    def step_weights(self, t_max: int | None = None) -> list[int]:
        """Weight of each timestep's spike in ``decode``: ``radix**(T-1-t)`` (all 1 for rate coding)."""
        t = self.timesteps if t_max is None else t_max
        return [self.radix ** (t - 1 - i) for i in range(t)]

    def combine_(self, acc: torch.Tensor, part: torch.Tensor) -> torch.Tensor:
        """Fold one step's partial product into the accumulator, in place: ``acc = radix*acc + part`` (Horner;
        a plain sum for rate coding). Steps arrive most significant first."""
        return acc.add_(part) if self.radix == 1 else acc.mul_(self.radix).add_(part)

    def spikes_per_step(self, q_abs: torch.Tensor, t_tok: torch.Tensor, t_max: int) -> torch.Tensor:
        """Spikes each step carries, per token: ``[T_max, N]`` from code magnitudes ``q_abs`` ``[N, K]`` and each
        token's timesteps ``t_tok`` ``[N]``. Exact integers; the default counts the trains of :meth:`encode`."""
        s = self._encode(q_abs.to(torch.int64), t_tok.view(-1, 1).to(torch.int64), t_max)
        return (s != 0).sum(-1)

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
