"""Spikify: swap a quantized model's Linear layers (and optionally attention) for spike-driven ones.

    convert(model, config): describe(model) -> select_targets -> methods -> layer_spec(config, map, name)
                            -> SpikeLinear(in, out, spec) per target -> model.spikemllm (SpikeState)
"""
from .convert import convert
from .select import matches, select_targets
from .specs import attention_spec, layer_spec
from .state import SpikeState, converted_config, spike_state

__all__ = ["convert", "matches", "select_targets", "layer_spec", "attention_spec", "SpikeState", "spike_state",
           "converted_config"]
