"""Which tokens are vision and which are text, for every SpikeLinear of a model, through one mechanism.

The model-level forward pre-hook (installed by :func:`spikemllm.convert`) computes a boolean mask ``[B, S]``
(True = vision token) from ``input_ids`` and publishes it here for the duration of the forward pass. A
:class:`~spikemllm.nn.SpikeLinear` in the language model reads it to give each token its own timesteps;
one in the vision tower ignores it (all its tokens are vision). Nothing family-specific lives here.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import torch

_MASK: contextvars.ContextVar[torch.Tensor | None] = contextvars.ContextVar("spikemllm_vision_mask", default=None)
# The modality of every position held in the KV cache (past + current tokens), for spiking attention's keys.
_KV_MASK: contextvars.ContextVar[torch.Tensor | None] = contextvars.ContextVar("spikemllm_kv_mask", default=None)


def current_vision_mask() -> torch.Tensor | None:
    """The mask of the forward pass in progress, or None outside one (then every token counts as text)."""
    return _MASK.get()


def current_kv_vision_mask() -> torch.Tensor | None:
    """Vision mask of all key positions (cached and current), or None (then keys follow the query mask)."""
    return _KV_MASK.get()


def set_masks(mask: torch.Tensor | None, kv_mask: torch.Tensor | None) -> tuple[contextvars.Token, contextvars.Token]:
    return _MASK.set(mask), _KV_MASK.set(kv_mask)


def reset_masks(tokens: tuple[contextvars.Token, contextvars.Token]) -> None:
    _MASK.reset(tokens[0])
    _KV_MASK.reset(tokens[1])


@contextlib.contextmanager
def vision_mask(mask: torch.Tensor | None) -> Iterator[None]:
    """Run a block of code with ``mask`` as the current vision mask (used by tests and by the hook)."""
    tok = set_masks(mask, mask)
    try:
        yield
    finally:
        reset_masks(tok)
