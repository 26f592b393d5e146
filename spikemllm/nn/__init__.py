"""Spiking layers and their run-time context (modality mask, statistics).

Each layer is built from a frozen spec (:mod:`.spec`): ``SpikeLinear(in, out, SpikeLinearSpec(...))``; spiking
attention reads a ``SpikeAttentionSpec`` on its module. The coder (:mod:`spikemllm.coding`) says how spikes
combine and how many there are; these layers only run the integer products.
"""
from .modality import current_vision_mask, vision_mask
from .spec import MODES, TOKEN_REGIONS, SpikeAttentionSpec, SpikeLinearSpec
from .spike_linear import BACKENDS, SpikeLinear, set_backend, set_mode
from .stats import LayerStats, ModalityCounts, RecordsStats, RunStats, collect_stats

__all__ = ["SpikeLinear", "SpikeLinearSpec", "SpikeAttentionSpec", "set_mode", "set_backend", "MODES", "BACKENDS",
           "TOKEN_REGIONS", "vision_mask", "current_vision_mask", "RunStats", "LayerStats", "ModalityCounts",
           "RecordsStats", "collect_stats"]
