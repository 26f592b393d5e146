"""Weight codes held compactly between a weight method and the spikify pass.

Why: a weight method (GPTQ, an external quantizer) chooses the codes of every target layer before any layer is
swapped for a SpikeLinear. Kept as :class:`~spikemllm.quant.Quantized` they are integer-valued float32 tensors,
as large as the float model itself: conversion would hold two models at once. :class:`CompactWeights` stores
each layer's codes as int8 (a quarter of float32) as soon as a method hands them over, and gives back the same
float codes when the spikify pass asks for them, one layer at a time. Codes that are not integers in the int8
range (a method that returns something else) are kept as they are, so nothing is ever changed silently.
"""
from __future__ import annotations

from collections.abc import Iterator, MutableMapping

import torch

from ..quant import Quantized


def _compact(q: Quantized) -> tuple[torch.Tensor, torch.dtype, torch.Tensor, torch.Tensor | None]:
    codes = q.q
    if codes.is_floating_point() and codes.numel() and bool((codes.abs() <= 127).all()) \
            and bool((codes == torch.round(codes)).all()):
        return codes.to(torch.int8), codes.dtype, q.scale, q.zero
    return codes, codes.dtype, q.scale, q.zero


class CompactWeights(MutableMapping):
    """``name -> Quantized`` whose codes are stored as int8 (see the module doc)."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[torch.Tensor, torch.dtype, torch.Tensor, torch.Tensor | None]] = {}

    def __setitem__(self, name: str, value: Quantized) -> None:
        self._data[name] = _compact(value)

    def __getitem__(self, name: str) -> Quantized:
        codes, dtype, scale, zero = self._data[name]
        return Quantized(codes.to(dtype), scale, zero)

    def __delitem__(self, name: str) -> None:
        del self._data[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def nbytes(self) -> int:
        """Bytes held (codes, scales, zero points): what the methods' results cost until spikify."""
        return sum(t.numel() * t.element_size() for v in self._data.values() for t in (v[0], v[2], v[3])
                   if t is not None)


__all__ = ["CompactWeights"]
