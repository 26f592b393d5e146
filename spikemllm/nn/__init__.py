"""Spiking layers and their run-time context (modality mask, statistics)."""
from .modality import current_vision_mask, vision_mask
from .spike_linear import BACKENDS, MODES, SpikeLinear, set_backend, set_mode
from .stats import LayerStats, ModalityCounts, RunStats, collect_stats

__all__ = ["SpikeLinear", "set_mode", "set_backend", "MODES", "BACKENDS", "vision_mask", "current_vision_mask",
           "RunStats", "LayerStats",
           "ModalityCounts", "collect_stats"]
