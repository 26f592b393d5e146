"""Run a stack of transformer blocks one block at a time on recorded inputs.

:func:`capture_stack` runs the model on each calibration batch with pre-hooks on the blocks of one stack (the
LM decoder layers or the vision blocks). Block 0's hidden-state input is kept; for every block its other
positional and keyword arguments are kept too, because they can differ per block (some vision towers'
blocks alternate windowed and full attention through ``cu_seqlens``). The pass stops with an exception when the last
needed block is about to run, so nothing after it is computed. KV caches in the recorded arguments are dropped
(blocks re-run several times must not append to a cache).

:func:`run_block` then replays one block on any hidden state with that block's recorded arguments.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

CACHE_KWARGS = ("cache", "past_key_values", "past_key_value")


class _Stop(Exception):
    """Raised by the last capture hook to end the forward pass early."""


@dataclass
class BlockCall:
    """A block's recorded call: positional arguments after the hidden state, keyword arguments."""

    args: tuple
    kwargs: dict[str, Any]
    hidden_kw: bool = False  # the hidden state was passed as ``hidden_states=``


def _clean(kwargs: dict[str, Any]) -> dict[str, Any]:
    kw = dict(kwargs)
    for k in CACHE_KWARGS:
        if k in kw:
            kw[k] = None
    if "use_cache" in kw:
        kw["use_cache"] = False
    return kw


def forward_model(model: nn.Module, batch: dict[str, Any]) -> Any:
    """``model(**batch)`` without a KV cache when the model's forward takes ``use_cache``; the batch goes to the
    model's device first (calibration sets are built on the CPU)."""
    from ..placement import input_device, to_device

    batch = to_device(batch, input_device(model))
    params = inspect.signature(model.forward).parameters
    if "use_cache" in params and "use_cache" not in batch:
        return model(**batch, use_cache=False)
    return model(**batch)


def capture_stack(model: nn.Module, layers: nn.ModuleList, upto: int, batches: list[dict[str, Any]],
                  before_batch: Callable[[int], None] | None = None) -> tuple[list[torch.Tensor], list[list[BlockCall]]]:
    """Hidden-state inputs of block 0 and the recorded calls of blocks ``0..upto``, per batch."""
    hidden: list[torch.Tensor] = []
    calls: list[list[BlockCall]] = []
    for b, batch in enumerate(batches):
        rec: list[BlockCall] = []
        h0: list[torch.Tensor] = []

        def make(j: int):
            def pre(module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
                if args:
                    x, rest, hk = args[0], tuple(args[1:]), False
                else:
                    x, rest, hk = kwargs["hidden_states"], (), True
                if j == 0:
                    h0.append(x.detach())
                rec.append(BlockCall(rest, _clean({k: v for k, v in kwargs.items() if k != "hidden_states"}), hk))
                if j == upto:
                    raise _Stop
            return pre

        handles = [layers[j].register_forward_pre_hook(make(j), with_kwargs=True) for j in range(upto + 1)]
        try:
            if before_batch is not None:
                before_batch(b)
            with torch.no_grad():
                forward_model(model, batch)
        except _Stop:
            pass
        finally:
            for h in handles:
                h.remove()
        if len(rec) != upto + 1:
            raise ValueError(f"calibration batch {b} ran {len(rec)} of blocks 0..{upto} of {type(layers[0]).__name__}; "
                             "the stack must run in order once per forward (check the calibration inputs)")
        hidden.append(h0[0])
        calls.append(rec)
    return hidden, calls


def run_block(block: nn.Module, hidden: torch.Tensor, call: BlockCall) -> torch.Tensor:
    """Replay ``block`` on ``hidden`` with its recorded arguments; returns the block's hidden-state output."""
    with torch.no_grad():
        out = block(*call.args, hidden_states=hidden, **call.kwargs) if call.hidden_kw else \
            block(hidden, *call.args, **call.kwargs)
    return out[0] if isinstance(out, (tuple, list)) else out
