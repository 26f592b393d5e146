"""Models built without memory, then given their tensors: what lean loading and streaming conversion share.

Why: ``cls(config)`` followed by ``load_state_dict`` first fills every parameter with random numbers (time,
and a whole model of memory) only to overwrite it. :func:`empty_model` builds the structure with every
parameter on the ``meta`` device (no storage); buffers the model computes itself (rotary ``inv_freq``) stay
real, because checkpoints do not hold them. :func:`assign` then puts the saved tensors in place, one dtype
conversion each, with no second copy.

The dtype rule (:func:`target_dtype`): integer tensors (weight codes) keep their integer dtype under any
requested dtype; a SpikeLinear's own float buffers (weight scales, bias) keep the float32 its integer
arithmetic is exact in; every other floating tensor (embeddings, norms, ``lm_head``, convolutions) takes the
requested dtype, or without one the dtype the model was built with.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from ..errors import ConfigError
from ..nn.spike_linear import SpikeLinear
from ..placement import DTYPES, resolve_dtype


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """``None``/``"auto"`` -> None (as stored); a name or a torch float dtype -> that dtype (one rule with the
    CLI's ``--dtype``: :func:`spikemllm.placement.resolve_dtype`; the message names the Python argument)."""
    try:
        return resolve_dtype(dtype, flag="dtype")
    except ConfigError:
        allowed = ", ".join(DTYPES)
        raise ConfigError(f"dtype={dtype!r} is unknown; allowed values: {allowed}") from None


def empty_model(cls: Any, hf_config: Any, **kwargs: Any) -> nn.Module:
    """``cls._from_config(hf_config, **kwargs)`` with every parameter on the meta device, in eval mode."""
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=False):
        model = cls._from_config(hf_config, **kwargs)
    return model.eval()


def _owners(model: nn.Module) -> dict[str, nn.Module]:
    """State-dict key -> the module that holds the tensor (for the dtype rule)."""
    out: dict[str, nn.Module] = {}
    for mname, mod in model.named_modules():
        for n, _ in list(mod.named_parameters(recurse=False)) + list(mod.named_buffers(recurse=False)):
            out[f"{mname}.{n}" if mname else n] = mod
    return out


def target_dtype(current: torch.Tensor, owner: nn.Module | None, saved: torch.Tensor,
                 dtype: torch.dtype | None) -> torch.dtype:
    """The dtype a saved tensor takes in the model (see the module doc)."""
    if not saved.is_floating_point():
        return saved.dtype
    if isinstance(owner, SpikeLinear):
        return current.dtype if current.is_floating_point() else saved.dtype
    if dtype is not None:
        return dtype
    return current.dtype if current.is_floating_point() else saved.dtype


def cast_state(model: nn.Module, state: Mapping[str, torch.Tensor], dtype: torch.dtype | None = None,
               device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """``state`` with each tensor in its target dtype and on ``device``; a tensor shared by several keys (tied
    weights) is converted once and stays shared."""
    current = dict(model.state_dict(keep_vars=True))
    owners = _owners(model)
    done: dict[int, torch.Tensor] = {}
    out: dict[str, torch.Tensor] = {}
    for key, t in state.items():
        cur = current.get(key)
        want = target_dtype(cur if cur is not None else t, owners.get(key), t, dtype)
        memo = (id(t), want)
        if memo not in done:
            done[memo] = t.to(device=device or t.device, dtype=want)
        out[key] = done[memo]
    return out


def assign(model: nn.Module, state: Mapping[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """Put ``state`` in place without copying (``load_state_dict(assign=True)``); returns (missing, unexpected)."""
    missing, unexpected = model.load_state_dict(dict(state), strict=False, assign=True)
    return list(missing), list(unexpected)


def meta_tensors(model: nn.Module) -> list[str]:
    """Names of parameters and buffers still without storage (nothing was assigned to them)."""
    return [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.device.type == "meta"]


def release_memory() -> None:
    """Give freed heap memory back to the system (glibc ``malloc_trim``; nothing elsewhere).

    Why: glibc serves allocations below its (adaptive, up to 32 MiB) mmap threshold from the heap and keeps them
    after they are freed. Converting or loading layer by layer frees many such buffers (float weights, int4
    unpacking temporaries); without a trim the process keeps up to a gigabyte it no longer uses on a 2B model.
    """
    import ctypes
    import ctypes.util

    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _LIBC.malloc_trim  # noqa: B018  (raises AttributeError off glibc)
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC = None

__all__ = ["assign", "cast_state", "empty_model", "meta_tensors", "parse_dtype", "release_memory",
           "target_dtype"]
