"""Choosing the layers to spikify: ``targets`` / ``ignore`` patterns over module names.

A pattern ``"re:<regex>"`` is searched in the module name; any other pattern matches the name exactly or as a
dotted suffix (``"lm_head"`` matches ``lm_head`` and ``model.lm_head``; ``"mlp.down_proj"`` matches every
``...mlp.down_proj``).
"""
from __future__ import annotations

import re

from torch import nn

from ..config import SpikeConfig
from ..errors import ConfigError
from ..models.base import ModelMap


def matches(name: str, pattern: str) -> bool:
    if pattern.startswith("re:"):
        return re.search(pattern[3:], name) is not None
    return name == pattern or name.endswith("." + pattern)


# The default ignore list is a precaution for models that have an lm_head; it may match nothing.
_DEFAULT_IGNORE = SpikeConfig.__dataclass_fields__["ignore"].default


def select_targets(mm: ModelMap, config: SpikeConfig) -> dict[str, nn.Linear]:
    """Every ``nn.Linear`` in the vision tower, projector and LM that ``targets`` keeps and ``ignore`` drops.

    A ``targets`` or ``ignore`` pattern that matches no ``nn.Linear`` of the model is refused: it is almost
    always a typo, and silently spikifying a layer meant to stay float would change the results.
    """
    out: dict[str, nn.Linear] = {}
    linears = [name for name, mod in mm.model.named_modules() if type(mod) is nn.Linear]
    unused = [p for p in config.ignore if p not in _DEFAULT_IGNORE and not any(matches(n, p) for n in linears)]
    if unused:
        raise ConfigError(f"SpikeConfig.ignore pattern(s) {unused} match no nn.Linear of this {mm.family} model; "
                          "use module names such as 'lm_head', 'mlp.down_proj' or 're:.*vision.*'")
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
        raise ConfigError(f"SpikeConfig.targets={list(config.targets)} matches no nn.Linear of this "
                         f"{mm.family} model; use module names such as 'q_proj' or 're:.*mlp.*'")
    return out
