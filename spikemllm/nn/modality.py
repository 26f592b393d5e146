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


def current_vision_mask() -> torch.Tensor | None:
    """The mask of the forward pass in progress, or None outside one (then every token counts as text)."""
    return _MASK.get()


def set_vision_mask(mask: torch.Tensor | None) -> contextvars.Token:
    return _MASK.set(mask)


def reset_vision_mask(token: contextvars.Token) -> None:
    _MASK.reset(token)


@contextlib.contextmanager
def vision_mask(mask: torch.Tensor | None) -> Iterator[None]:
    """Run a block of code with ``mask`` as the current vision mask (used by tests and by the hook)."""
    tok = _MASK.set(mask)
    try:
        yield
    finally:
        _MASK.reset(tok)
