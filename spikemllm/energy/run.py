"""Count a real forward pass of a converted model: the bridge from ``spikemllm.collect_stats`` to LayerCounts.

Why a separate step: counting needs a converted model and inputs, which the shape-based path does not; keeping
it here lets the CLI and tests share one way of doing it (convert if needed, one forward, no gradients).
"""
from __future__ import annotations

from typing import Any, Mapping

from ..errors import ConfigError
from ..nn.stats import collect_stats
from ..spikify import convert
from ..spikify.state import converted_config
from .counting import LayerCount, counts_from_stats

__all__ = ["count_model_run"]


def count_model_run(model: Any, inputs: Mapping[str, Any], config: Any = None) -> list[LayerCount]:
    """Convert ``model`` with ``config`` unless it already is converted, run ``model(**inputs)`` once and count.

    Every weight is read once in one forward pass, so ``weight_passes`` is 1.
    """
    import torch

    if converted_config(model) is None:
        model = convert(model, config, progress=False)
    model.eval()
    with torch.no_grad(), collect_stats(model) as stats:
        model(**inputs)
    if not stats.layers:
        raise ConfigError("the run recorded no SpikeLinear statistics: is the model converted?")
    return counts_from_stats(stats, weight_passes=1)
