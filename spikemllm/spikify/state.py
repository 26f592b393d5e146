"""What spikemllm keeps on a converted model: one attribute, ``model.spikemllm`` (a :class:`SpikeState`).

* ``config``: the :class:`~spikemllm.SpikeConfig` it was converted with;
* ``model_map``: where its parts are (the adapter's :class:`~spikemllm.models.ModelMap`);
* ``hook``: the :class:`~spikemllm.spikify.hook.ModalityHook` that publishes which tokens are vision.

Per layer, the state is the layer's own frozen spec (``SpikeLinear.spec``; ``module._spike_attn`` on an attention
module, since transformers hands the attention function only the module). ``model.spike_config`` is kept as an
alias of ``model.spikemllm.config`` for code written before this attribute existed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from ..config import SpikeConfig
from ..models.base import ModelMap

STATE_ATTR = "spikemllm"

__all__ = ["SpikeState", "STATE_ATTR", "spike_state", "converted_config"]


@dataclass
class SpikeState:
    config: SpikeConfig
    model_map: ModelMap
    hook: Any  # ModalityHook (typed loosely: the hook module imports the model map, not this one)

    def attach(self, model: nn.Module) -> None:
        object.__setattr__(model, STATE_ATTR, self)
        object.__setattr__(model, "spike_config", self.config)  # the alias (see module docstring)


def spike_state(model: nn.Module) -> SpikeState | None:
    """The model's :class:`SpikeState`, or None for a model spikemllm has not converted."""
    st = getattr(model, STATE_ATTR, None)
    return st if isinstance(st, SpikeState) else None


def converted_config(model: nn.Module) -> SpikeConfig | None:
    """The config ``model`` was converted with, or None (also reads checkpoints of the old alias only)."""
    st = spike_state(model)
    return st.config if st is not None else getattr(model, "spike_config", None)
