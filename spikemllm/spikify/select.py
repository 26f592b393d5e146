"""Choosing the layers to spikify: ``targets`` / ``ignore`` patterns over module names.

A pattern ``"re:<regex>"`` is searched in the module name; any other pattern matches the name exactly or as a
dotted suffix (``"lm_head"`` matches ``lm_head`` and ``model.lm_head``; ``"mlp.down_proj"`` matches every
``...mlp.down_proj``).
"""
from __future__ import annotations

import re

from torch import nn

from ..config import SpikeConfig
from ..models.base import ModelMap


def matches(name: str, pattern: str) -> bool:
    if pattern.startswith("re:"):
        return re.search(pattern[3:], name) is not None
    return name == pattern or name.endswith("." + pattern)


def select_targets(mm: ModelMap, config: SpikeConfig) -> dict[str, nn.Linear]:
    """Every ``nn.Linear`` in the vision tower, projector and LM that ``targets`` keeps and ``ignore`` drops."""
    out: dict[str, nn.Linear] = {}
    for name, mod in mm.model.named_modules():
        if type(mod) is not nn.Linear:
            continue
        if config.targets:
            if not any(matches(name, p) for p in config.targets):
                continue
        elif mm.region_of(name) is None:
            continue
        if any(matches(name, p) for p in config.ignore):
            continue
        out[name] = mod
    if config.targets and not out:
        raise ValueError(f"SpikeConfig.targets={list(config.targets)} matches no nn.Linear of this "
                         f"{mm.family} model; use module names such as 'q_proj' or 're:.*mlp.*'")
    return out
