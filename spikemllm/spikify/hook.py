"""The one modality mechanism: a forward pre-hook on the converted model publishes which tokens are vision.

It asks the family adapter (``ModelMap.vision_mask``) for the mask of the call's inputs and keeps the masks of
the positions already in the KV cache, so that spiking attention knows the modality of every key during
``generate()``. Tokens generated after the prompt carry text ids, so they are text. After a long prefill-sized
call it gives the heap memory the call freed back to the system (see :func:`spikemllm.spikify.meta.release_memory`).
"""
from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from ..models.base import ModelMap
from ..nn.modality import reset_masks, set_masks
from .meta import release_memory

# After a call over at least this many tokens (a prefill, not a decode step) that lasted at least this long, the
# heap is trimmed. A trim costs ~10 ms plus the page faults of the next call that reuses the memory: worth it after
# a prefill of a large model (seconds), not in a loop of small calls (measured on the tiny bench_convert.py models:
# trimming after every 100-token call made spiking attention 1.23-1.35x dense instead of 1.10-1.23x).
TRIM_AFTER_TOKENS = 64
TRIM_AFTER_SECONDS = 0.5


def _cache_len(kwargs: dict[str, Any]) -> int:
    for key in ("past_key_values", "cache"):
        c = kwargs.get(key)
        if c is not None and hasattr(c, "get_seq_length"):
            try:
                return int(c.get_seq_length())
            except Exception:  # noqa: BLE001  (a cache type without layers yet)
                return 0
    return 0


class ModalityHook:
    """Installed once per converted model; ``remove()`` detaches it."""

    def __init__(self, model: nn.Module, mm: ModelMap) -> None:
        self.mm = mm
        self.history: torch.Tensor | None = None
        self._tokens: list[Any] = []
        self._handles = [
            model.register_forward_pre_hook(self._pre, with_kwargs=True),
            model.register_forward_hook(self._post, always_call=True),
        ]

    def _pre(self, module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        inputs = dict(kwargs)
        if args and "input_ids" not in inputs and isinstance(args[0], torch.Tensor):
            inputs["input_ids"] = args[0]
        ids = inputs.get("input_ids")
        mask = self.mm.vision_mask(inputs)
        if mask is not None and ids is not None and mask.shape[-1] != ids.shape[-1]:
            mask = mask[..., -ids.shape[-1]:]  # some generate() steps pass the full-length type ids
        if mask is None and ids is not None:
            mask = torch.zeros(ids.shape, dtype=torch.bool, device=ids.device)
        past = _cache_len(inputs)
        if mask is None:
            kv = None
        elif past and self.history is not None and self.history.shape[-1] == past and \
                self.history.shape[0] == mask.shape[0]:
            kv = torch.cat([self.history, mask], dim=-1)
        else:
            kv = mask
        self.history = kv
        self._big = ids is not None and ids.numel() >= TRIM_AFTER_TOKENS
        self._t0 = time.perf_counter()
        # No vision token in this call: publish None, so every layer (poolers included) runs at text T.
        query_mask = mask if mask is not None and bool(mask.any()) else None
        self._tokens.append(set_masks(query_mask, kv))

    def _post(self, module: nn.Module, args: tuple, output: Any) -> None:
        if self._tokens:
            reset_masks(self._tokens.pop())
        if getattr(self, "_big", False) and time.perf_counter() - self._t0 >= TRIM_AFTER_SECONDS:
            # A prefill frees activations that glibc would keep in the heap (the spiking model holds a third of
            # the float model's weights, so they would be a visible share of its resident memory); ~10 ms.
            release_memory()

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
