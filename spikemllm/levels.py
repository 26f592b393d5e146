"""The one mapping between bits, levels and timesteps.

Paper notation (SpikeMLLM, arXiv 2604.18610): an activation quantizer with ``b`` bits has ``L = 2**b`` levels.

* Rate coding, unsigned (the paper's IF baseline): integer ``q in [0, L-1]`` is ``q`` binary spikes, so
  ``T = L - 1`` (4 bits -> 15 steps).
* Rate coding, signed (ternary spikes): symmetric codes ``q in [-(2**(b-1)-1), 2**(b-1)-1]``; a ternary
  neuron emits ``|q|`` spikes of sign ``sign(q)``, so ``T = q_max = 2**(b-1) - 1`` (4 bits -> 7 steps).
* TC-LIF (temporally compressed): symmetric codes sent as signed bit-planes, most significant first, spike
  ``t`` weighted ``2**(T-1-t)``. The one code ``-2**(b-1)`` that symmetric quantization never produces is
  dropped, leaving ``L - 1`` levels, so ``T = log2(L) - 1 = b - 1`` (4 bits -> 3 steps, 5 bits -> 4 steps).

Each coder class states its own rule (:class:`spikemllm.coding.Coder`: radix, hard limit); this module is the
by-name front door to the coder registry, so code holding a ``SpikeConfig.coder`` string asks here and nothing
re-derives the numbers.
"""
from __future__ import annotations

from .coding import LevelSpec, coder_names, get_coder

__all__ = ["LevelSpec", "level_spec", "steps_for_bits", "qmax_for", "max_timesteps", "coder_names"]


def level_spec(coding: str, *, bits: int | None = None, timesteps: int | None = None,
               signed: bool = True) -> LevelSpec:
    """Return the integer range and timesteps for ``coding`` given either ``bits`` or ``timesteps``.

    Given ``timesteps`` for rate coding, any ``T >= 1`` is allowed (``q_max = T``); ``bits`` is then the
    smallest bit width holding that range. Given ``timesteps`` for TC-LIF, ``bits = T + 1``.
    """
    return get_coder(coding, what="coding").level_spec(bits=bits, timesteps=timesteps, signed=signed)


def steps_for_bits(coding: str, bits: int, signed: bool = True) -> int:
    """Timesteps a ``bits``-bit code needs under ``coding`` (see module docstring)."""
    return level_spec(coding, bits=bits, signed=signed).timesteps


def qmax_for(coding: str, timesteps: int, signed: bool = True) -> int:
    """Largest integer a neuron can emit in ``timesteps`` steps under ``coding``."""
    return level_spec(coding, timesteps=timesteps, signed=signed).qmax


def max_timesteps(coding: str, signed: bool = True, max_bits: int = 8) -> int:
    """Most timesteps worth running under ``coding``: its hard limit (TC-LIF: 15), else the steps of
    ``max_bits``-bit codes (rate coding itself has no upper limit)."""
    coder = get_coder(coding, what="coding")
    coder.check_signed(signed)
    return coder.max_timesteps(signed, max_bits)
