"""``convert(model, config)``: quantize with the config's methods, then swap Linear layers for SpikeLinear.

    SpikeConfig --describe()--> ModelMap --select_targets--> targets --methods--> integer weights
      --layer_spec(config, map, name)--> SpikeLinearSpec --> SpikeLinear(in, out, spec); model.spikemllm = state
"""
from __future__ import annotations

from typing import Any, Iterable

from torch import nn
from tqdm.auto import tqdm

from ..calibrate.offload import read_param
from ..config import SpikeConfig
from ..errors import ConfigError
from ..logs import get_logger
from ..methods import QuantContext, apply_methods
from ..models.base import ModelMap, describe
from ..nn.spike_attention import register_spike_attention
from ..nn.spike_linear import SpikeLinear
from .hook import ModalityHook
from .select import select_targets
from .specs import attention_spec, layer_spec
from .state import SpikeState, converted_config

_log = get_logger(__name__)


def _set_module(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)


def _check_fits(mm: ModelMap, config: SpikeConfig) -> None:
    for key in config.layer_timesteps:
        kind, idx = key.split(".")
        n = mm.num_layers(kind)
        if n == 0:
            raise ConfigError(f"SpikeConfig.layer_timesteps has {key!r} but this {mm.family} model has no {kind} "
                              f"layers; allowed keys: lm.0 .. lm.{max(mm.num_layers('lm') - 1, 0)}")
        if int(idx) >= n:
            raise ConfigError(f"SpikeConfig.layer_timesteps has {key!r} but this {mm.family} model has {n} {kind} "
                              f"layers; allowed keys: {kind}.0 .. {kind}.{max(n - 1, 0)}")


def spikify_attention(mm: ModelMap, config: SpikeConfig) -> int:
    """Tag every attention module with its spiking settings and switch the model to spiking attention."""
    name_ = register_spike_attention()
    count = 0
    for name in mm.attention_modules():  # the adapter's block layouts say where attention is
        mm.model.get_submodule(name)._spike_attn = attention_spec(config, mm, name)
        count += 1
    for mod in mm.model.modules():
        cfg = getattr(mod, "config", None)
        if cfg is not None and hasattr(cfg, "_attn_implementation"):
            cfg._attn_implementation = name_
    return count


def convert(model: nn.Module, config: SpikeConfig | None = None, calib: Iterable[dict[str, Any]] | None = None,
            *, progress: bool = True, quantize_weights: bool = True) -> nn.Module:
    """Turn ``model`` into a spike-driven model, in place, and return it.

    Args:
        model: a Hugging Face model of a supported family (see :func:`spikemllm.models.supported_model_types`).
        config: what to compute (default: TC-LIF, Tv/Tt = 3/4, W4, RTN).
        calib: calibration batches (dicts of model inputs) for methods that need them.
        progress: show a progress bar over the layers.
        quantize_weights: False builds the structure only (used by :func:`spikemllm.load`).
    """
    config = config or SpikeConfig()
    if converted_config(model) is not None:
        raise ConfigError("this model is already converted; convert a fresh float model")
    mm = describe(model)
    _check_fits(mm, config)
    targets = select_targets(mm, config)
    ctx = QuantContext(model=model, model_map=mm, config=config, targets=targets,
                       calib=list(calib) if calib is not None else None,
                       log=_log.info if progress else _log.debug, progress=progress)
    if quantize_weights:
        apply_methods(ctx)
    for name, lin in tqdm(list(targets.items()), desc="spikify", unit="layer", disable=not progress):
        # read_param: a layer offloaded by accelerate keeps its weights in the offload map, not on the module
        bias = read_param(lin, "bias") if lin.bias is not None and quantize_weights else None
        new = SpikeLinear.from_linear(lin, layer_spec(config, mm, name), weight=ctx.weights.get(name), bias=bias,
                                      quantize_weight=quantize_weights,
                                      input_transform=ctx.input_transforms.get(name))
        _set_module(model, name, new)
    if config.attention == "spike":
        spikify_attention(mm, config)
    SpikeState(config=config, model_map=mm, hook=ModalityHook(model, mm)).attach(model)
    return model
