"""Calibration pipeline: data flow for methods that need statistics (hooks, block-by-block runs, offload).

Methods own the math (:mod:`spikemllm.methods`); this package owns how calibration data reaches each layer.
"""
from .blocks import BlockCall, capture_stack, forward_model, run_block
from .data import calibration_batches, default_calibration
from .offload import is_offloaded, read_param, write_param
from .pipeline import BlockGroup, calibration_stats, run_blockwise
from .stats import LinearStats, StatsHooks, transform_hooks

__all__ = ["BlockGroup", "BlockCall", "LinearStats", "StatsHooks", "calibration_batches", "capture_stack",
           "calibration_stats", "default_calibration", "forward_model", "is_offloaded", "read_param", "run_block",
           "run_blockwise", "transform_hooks", "write_param"]
