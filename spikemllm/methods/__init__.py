"""Quantization methods, registered by name (see :mod:`spikemllm.methods.base`).

* ``rtn`` -- round to nearest (weights, data-free);
* ``smoothquant`` -- per-channel factors migrated from activations into weights (transform, calibrated);
* ``rotation`` -- QuaRot-style Hadamard rotations, offline in the residual stream and online elsewhere
  (transform, data-free);
* ``gptq`` -- Hessian-aware weight rounding (weights, calibrated);
* ``external`` -- integer weights read from a compressed-tensors checkpoint (weights, see :mod:`.external`).

Compose transforms before one weight method: ``["rotation", "gptq"]`` is QuaRot.
"""
from . import external, gptq, rotation, rtn, smoothquant  # noqa: F401  (registration)
from .base import Method, QuantContext, apply_methods, get_method, register_method, registered_methods, validate_order

__all__ = ["Method", "QuantContext", "apply_methods", "get_method", "register_method", "registered_methods",
           "validate_order"]
