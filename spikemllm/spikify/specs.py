"""The one place a :class:`~spikemllm.SpikeConfig` becomes per-layer specs.

    layer_spec(config, model_map, "model.language_model.layers.3.mlp.down_proj") -> SpikeLinearSpec
    attention_spec(config, model_map, "model.language_model.layers.3.self_attn") -> SpikeAttentionSpec

:func:`spikemllm.convert` (and :func:`spikemllm.load`, which converts the structure first) builds every layer
from these; anything that changes a converted layer later replaces fields of its spec
(``dataclasses.replace``), so a setting of the config reaches every layer the same way.
"""
from __future__ import annotations

from ..config import SpikeConfig
from ..models.base import ModelMap
from ..nn.spec import SpikeAttentionSpec, SpikeLinearSpec
from ..quant import QuantSpec

__all__ = ["layer_timesteps", "token_region", "layer_spec", "attention_spec"]


def token_region(mm: ModelMap, name: str) -> str:
    """``"vision"`` for the vision tower and the projector (they only ever see vision tokens), else ``"lm"``."""
    return "vision" if mm.region_of(name) in ("vision", "projector") else "lm"


def layer_timesteps(mm: ModelMap, config: SpikeConfig, name: str) -> dict[str, int]:
    """``{"vision": Tv, "text": Tt}`` of module ``name``: its block's ``layer_timesteps`` entry, else global."""
    kind_idx = mm.layer_of(name)
    return config.timesteps_for(*kind_idx) if kind_idx else config.timesteps_for(None, None)


def layer_spec(config: SpikeConfig, mm: ModelMap, name: str) -> SpikeLinearSpec:
    """The spec of the spiking linear layer that replaces module ``name``."""
    t = layer_timesteps(mm, config, name)
    weights = QuantSpec(bits=config.weight_bits, symmetric=True, granularity=config.weight_granularity,
                        group_size=config.group_size)
    return SpikeLinearSpec(coder=config.coder, t_text=t["text"], t_vision=t["vision"],
                           region=token_region(mm, name), signed=config.signed, weight_spec=weights,
                           act_clip=config.act_clip, act_group_size=config.act_group_size, mode=config.mode)


def attention_spec(config: SpikeConfig, mm: ModelMap, name: str) -> SpikeAttentionSpec:
    """The spec of spiking attention module ``name``."""
    t = layer_timesteps(mm, config, name)
    return SpikeAttentionSpec(coder=config.coder, t_text=t["text"], t_vision=t["vision"],
                              region=token_region(mm, name), mode=config.mode)
