"""Quantization methods, registered by name (see :mod:`spikemllm.methods.base`)."""
from . import rtn  # noqa: F401  (registration)
from .base import Method, QuantContext, apply_methods, get_method, register_method, registered_methods, validate_order

__all__ = ["Method", "QuantContext", "apply_methods", "get_method", "register_method", "registered_methods",
           "validate_order"]
