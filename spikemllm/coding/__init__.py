"""Spike coders (neurons): one registry by name, one class per coder.

A coder owns everything about its coding: the integer range and timesteps of a bit width (:meth:`Coder.level_spec`),
the weight of each step and how steps combine, the spike counts per step, and the neuron itself. Nothing outside
this package branches on a coder's name; :mod:`spikemllm.levels` and :class:`spikemllm.SpikeConfig` read the
registry. Adding a coder is one file with a registered :class:`Coder` subclass.
"""
from __future__ import annotations

from .base import Coder, LevelSpec
from .if_coder import IFCoder
from .registry import CODERS, DEFAULT_CODER, coder_names, get_coder, make_coder, register_coder, unregister_coder
from .tclif import TCLIFCoder

__all__ = ["Coder", "LevelSpec", "IFCoder", "TCLIFCoder", "CODERS", "DEFAULT_CODER", "coder_names", "get_coder", "make_coder",
           "register_coder", "unregister_coder"]
