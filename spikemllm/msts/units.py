"""Units of allocation: one (group, modality) pair gets one timestep count.

A *group* is a block of the language model (``"lm.<i>"``), a block of the vision tower (``"vision.<i>"``) --
the same keys as :attr:`spikemllm.SpikeConfig.layer_timesteps` -- or ``"rest"``: every converted linear
outside those blocks (the projector, for example), which runs at the config's global ``timesteps``.
Keeping the keys identical to the config's means an allocation *is* a config, with no translation table.
"""
from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..levels import level_spec, max_timesteps
from ..models.base import ModelMap

REST = "rest"
MODALITIES = ("vision", "text")
#: Activations wider than this are not a spiking model any more; it bounds rate coding's timesteps.
MAX_ACT_BITS = 8


def group_of(mm: ModelMap, module_name: str) -> str:
    """``"lm.<i>"`` / ``"vision.<i>"`` for a module inside a block, else ``"rest"``."""
    kind_idx = mm.layer_of(module_name)
    return f"{kind_idx[0]}.{kind_idx[1]}" if kind_idx else REST


def group_sort_key(group: str) -> tuple[int, int]:
    """Vision tower blocks first, then the rest (projector), then LM blocks: the order tokens flow."""
    if group == REST:
        return (1, 0)
    kind, idx = group.split(".")
    return (0 if kind == "vision" else 2, int(idx))


def coder_max_timesteps(coder: str, signed: bool = True) -> int:
    """Most timesteps a coder allows: 15 for TC-LIF (its hard limit), and for rate coding the steps of
    :data:`MAX_ACT_BITS`-bit activations (rate coding itself has no upper limit)."""
    return max_timesteps(coder, signed, MAX_ACT_BITS)


def qmax(coder: str, timesteps: int, signed: bool = True) -> int:
    """Largest code at ``timesteps`` steps (quantization step ~ 1 / qmax)."""
    return level_spec(coder, timesteps=timesteps, signed=signed).qmax


def check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ConfigError(f"{name}={value!r} is not a number; allowed values: a finite int or float")
    return float(value)
