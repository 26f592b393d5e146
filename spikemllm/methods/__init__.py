"""Quantization methods, registered by name (see :mod:`spikemllm.methods.base`).

* ``rtn`` -- round to nearest (weights, data-free);
* ``smoothquant`` -- per-channel factors migrated from activations into weights (transform, calibrated);
* ``rotation`` -- QuaRot-style Hadamard rotations, offline in the residual stream and online elsewhere
  (transform, data-free);
* ``gptq`` -- Hessian-aware weight rounding (weights, calibrated);
* ``external`` -- integer weights read from a compressed-tensors checkpoint (weights, see :mod:`.external`).

Compose transforms before one weight method: ``["rotation", "gptq"]`` is QuaRot. Each method declares its
options as a frozen dataclass (``GPTQOptions``, ...) beside its registration; SpikeConfig checks them when built.
"""
from . import external, gptq, rotation, rtn, smoothquant  # noqa: F401  (registration)
from .base import (Method, NoOptions, QuantContext, apply_methods, check_method_options, declare_method, get_method,
                   parse_options, register_method, registered_methods, validate_order)

__all__ = ["Method", "NoOptions", "QuantContext", "apply_methods", "check_method_options", "declare_method",
           "get_method", "parse_options", "register_method", "registered_methods", "validate_order"]
