"""``convert(model, config)``: quantize with the config's methods, then swap Linear layers for SpikeLinear.

    SpikeConfig --describe()--> ModelMap --select_targets--> targets --methods--> integer weights
      --layer_spec(config, map, name)--> SpikeLinearSpec --> SpikeLinear(in, out, spec); model.spikemllm = state

Lean by construction (issue 12): the spikify pass takes the target layers one at a time, quantizes the layer
(RTN) or takes the codes a weight method chose, builds its SpikeLinear and drops every reference to the float
layer before the next, so peak memory is the float model plus about one layer, never two models. RTN, the
default and the fallback of every other method, therefore runs layer by layer here rather than for the whole
model up front. Codes chosen ahead by a weight method (GPTQ, external) wait in
:class:`~spikemllm.spikify.compact.CompactWeights` as int8.
"""
from __future__ import annotations

from typing import Any, Iterable

import torch
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
from ..quant import quantize
from .compact import CompactWeights
from .hook import ModalityHook
from .meta import release_memory
from .select import select_targets
from .specs import attention_spec, layer_spec
from .state import SpikeState, converted_config

_log = get_logger(__name__)

TRIM_EVERY = 256 * 2 ** 20  # bytes of float weights freed between two heap trims (a trim takes milliseconds)


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


def spikify_layer(model: nn.Module, mm: ModelMap, ctx: QuantContext, name: str, lin: nn.Module, *,
                  quantize_weights: bool = True) -> SpikeLinear:
    """Swap target ``name`` (the Linear ``lin``) for its SpikeLinear; its codes leave ``ctx.weights``."""
    spec = layer_spec(ctx.config, mm, name)
    weight = ctx.weights.pop(name, None)
    bias = None
    if quantize_weights:
        if weight is None:  # RTN, one layer at a time
            weight = quantize(read_param(lin, "weight").float(), spec.weight_spec)
        # read_param: a layer offloaded by accelerate keeps its weights in the offload map, not on the module
        bias = read_param(lin, "bias") if lin.bias is not None else None
    transform = ctx.input_transforms.get(name)
    if not quantize_weights and lin.weight.device.type == "meta":
        # structure only, for a model built on the meta device (lean load): no storage until the state is assigned
        with torch.device("meta"):
            new = SpikeLinear(lin.in_features, lin.out_features, spec, bias=lin.bias is not None,
                              input_transform=transform)
    else:
        new = SpikeLinear.from_linear(lin, spec, weight=weight, bias=bias, quantize_weight=quantize_weights,
                                      input_transform=transform)
    _set_module(model, name, new)
    return new


def prepare(model: nn.Module, config: SpikeConfig, calib: Iterable[dict[str, Any]] | None, *,
            progress: bool) -> QuantContext:
    """Check the model and config and choose the targets: everything convert does before any weight changes."""
    if converted_config(model) is not None:
        raise ConfigError("this model is already converted; convert a fresh float model")
    mm = describe(model)
    _check_fits(mm, config)
    targets = select_targets(mm, config)
    return QuantContext(model=model, model_map=mm, config=config, targets=targets,
                        calib=list(calib) if calib is not None else None, weights=CompactWeights(),
                        log=_log.info if progress else _log.debug, progress=progress)


def finish(model: nn.Module, mm: ModelMap, config: SpikeConfig) -> nn.Module:
    """Spiking attention, the config and the modality hook: what follows the layer swap."""
    if config.attention == "spike":
        spikify_attention(mm, config)
    SpikeState(config=config, model_map=mm, hook=ModalityHook(model, mm)).attach(model)
    return model


def convert(model: nn.Module, config: SpikeConfig | None = None, calib: Iterable[dict[str, Any]] | None = None,
            *, progress: bool = True, quantize_weights: bool = True) -> nn.Module:
    """Turn ``model`` into a spike-driven model, in place, and return it.

    Each float Linear is freed as soon as its SpikeLinear replaces it (unless something else still holds it),
    so the peak is the float model plus about one layer.

    Args:
        model: a Hugging Face model of a supported family (see :func:`spikemllm.models.supported_model_types`).
        config: what to compute (default: TC-LIF, Tv/Tt = 3/4, W4, RTN).
        calib: calibration batches (dicts of model inputs) for methods that need them.
        progress: show a progress bar over the layers.
        quantize_weights: False builds the structure only (used by :func:`spikemllm.load`).
    """
    config = config or SpikeConfig()
    ctx = prepare(model, config, calib, progress=progress)
    if quantize_weights:
        apply_methods(ctx, rtn=False)  # RTN runs layer by layer in the spikify pass below
    names = list(ctx.targets)
    freed = 0
    for name in tqdm(names, desc="spikify", unit="layer", disable=not progress):
        # pop: the context must not keep the float layer alive once its SpikeLinear is in place
        lin = ctx.targets.pop(name)
        w = lin.weight
        freed += w.numel() * w.element_size() if w.device.type != "meta" else 0
        del w
        spikify_layer(model, ctx.model_map, ctx, name, lin, quantize_weights=quantize_weights)
        del lin
        if freed >= TRIM_EVERY:  # glibc keeps freed layers of < 32 MiB in its heap: give them back now and then
            release_memory()
            freed = 0
    release_memory()
    return finish(model, ctx.model_map, config)
