"""The one mapping between bits, levels and timesteps.

Paper notation (SpikeMLLM, arXiv 2604.18610): an activation quantizer with ``b`` bits has ``L = 2**b`` levels.

* Rate coding, unsigned (the paper's IF baseline): integer ``q in [0, L-1]`` is ``q`` binary spikes, so
  ``T = L - 1`` (4 bits -> 15 steps).
* Rate coding, signed (ternary spikes): symmetric codes ``q in [-(2**(b-1)-1), 2**(b-1)-1]``; a ternary
  neuron emits ``|q|`` spikes of sign ``sign(q)``, so ``T = q_max = 2**(b-1) - 1`` (4 bits -> 7 steps).
* TC-LIF (temporally compressed): symmetric codes sent as signed bit-planes, most significant first, spike
  ``t`` weighted ``2**(T-1-t)``. The one code ``-2**(b-1)`` that symmetric quantization never produces is
  dropped, leaving ``L - 1`` levels, so ``T = log2(L) - 1 = b - 1`` (4 bits -> 3 steps, 5 bits -> 4 steps).

Everything in spikemllm that needs one of these numbers calls :func:`level_spec`; nothing re-derives them.
"""
from __future__ import annotations

from dataclasses import dataclass

CODINGS = ("if", "tc-lif")


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


def _check_coding(coding: str, signed: bool) -> None:
    if coding not in CODINGS:
        raise ValueError(f"coding={coding!r} is unknown; allowed values: {', '.join(CODINGS)}")
    if coding == "tc-lif" and not signed:
        raise ValueError("signed=False is not supported for coding='tc-lif'; allowed: signed=True (use 'if' for unsigned codes)")


def level_spec(coding: str, *, bits: int | None = None, timesteps: int | None = None,
               signed: bool = True) -> LevelSpec:
    """Return the integer range and timesteps for ``coding`` given either ``bits`` or ``timesteps``.

    Given ``timesteps`` for rate coding, any ``T >= 1`` is allowed (``q_max = T``); ``bits`` is then the
    smallest bit width holding that range. Given ``timesteps`` for TC-LIF, ``bits = T + 1``.
    """
    _check_coding(coding, signed)
    if (bits is None) == (timesteps is None):
        raise ValueError("level_spec needs exactly one of bits= or timesteps=")
    if bits is not None:
        if not isinstance(bits, int) or bits < 2 or bits > 16:
            raise ValueError(f"bits={bits!r} is out of range; allowed values: integers 2..16")
        if coding == "tc-lif":
            t = bits - 1
        elif signed:
            t = 2 ** (bits - 1) - 1
        else:
            t = 2 ** bits - 1
    else:
        t = timesteps
        if not isinstance(t, int) or t < 1:
            raise ValueError(f"timesteps={t!r} is out of range; allowed values: integers >= 1")
        if coding == "tc-lif":
            if t > 15:
                raise ValueError(f"timesteps={t} is out of range for tc-lif; allowed values: 1..15")
            bits = t + 1
        elif signed:
            bits = max(2, (t).bit_length() + 1)
        else:
            bits = max(2, (t).bit_length())
    if coding == "tc-lif":
        qmax = 2 ** t - 1
    else:
        qmax = t
    qmin = -qmax if signed else 0
    return LevelSpec(coding=coding, signed=signed, bits=bits, timesteps=t, qmin=qmin, qmax=qmax)


def timesteps_for(coding: str, bits: int, signed: bool = True) -> int:
    """Timesteps a ``bits``-bit code needs under ``coding`` (see module docstring)."""
    return level_spec(coding, bits=bits, signed=signed).timesteps


def qmax_for(coding: str, timesteps: int, signed: bool = True) -> int:
    """Largest integer a neuron can emit in ``timesteps`` steps under ``coding``."""
    return level_spec(coding, timesteps=timesteps, signed=signed).qmax
