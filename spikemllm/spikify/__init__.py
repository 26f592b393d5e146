"""Spikify: swap a quantized model's Linear layers (and optionally attention) for spike-driven ones."""
from .convert import convert
from .select import matches, select_targets

__all__ = ["convert", "matches", "select_targets"]
