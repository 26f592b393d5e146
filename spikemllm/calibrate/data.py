"""Calibration data: the caller's batches, or a small default set.

A calibration set is a list of keyword dicts for ``model(**batch)`` (image+text batches for a VLM). When the
caller gives none, :func:`default_calibration` builds one, in this order of preference:

1. the bundled data, when :mod:`spikemllm.bench.minibench` exposes ``calibration_batches(model_map, n, seed)``;
2. perturbed copies of an ``example`` input (random text tokens at the text positions, random pixels of the
   example's shape and spread) -- any family, since the example already has the family's input layout;
3. for text-only models, random token sequences from the model's vocabulary.

A VLM with neither bundled data nor an example cannot be given valid pixel inputs without family knowledge
(grid sizes, patch layouts), so it gets an error that says what to pass.
"""
from __future__ import annotations

from typing import Any

import torch

from ..errors import DataError, UnsupportedModel
from ..models.base import ModelMap


def _vocab_size(model: torch.nn.Module) -> int:
    cfg = getattr(model, "config", None)
    text = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    v = getattr(text, "vocab_size", None) or getattr(cfg, "vocab_size", None)
    if not isinstance(v, int):
        raise UnsupportedModel("cannot find the model's vocab_size to generate calibration tokens; pass calib batches")
    return v


def _special_ids(model: torch.nn.Module) -> set[int]:
    """Token ids a config names (``image_token_id``, ``vision_start_token_id``, ``eos_token_id``, ...)."""
    out: set[int] = set()
    cfg = getattr(model, "config", None)
    for c in (cfg, cfg.get_text_config() if hasattr(cfg, "get_text_config") else None):
        for k, v in (vars(c).items() if c is not None else ()):
            if k.endswith(("token_id", "token_index", "token_ids")):
                out.update(x for x in (v if isinstance(v, (list, tuple)) else [v]) if isinstance(x, int))
    return out


def _random_tokens(model: torch.nn.Module, shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    """Random ordinary tokens: ids 3.. of the vocabulary, never a special id (an image token at a text position
    would not match the image features)."""
    vocab = _vocab_size(model)
    allowed = torch.tensor(sorted(set(range(3, vocab)) - _special_ids(model)))
    return allowed[torch.randint(0, len(allowed), shape, generator=g)]


def _from_example(model_map: ModelMap, example: dict[str, Any], n: int, seed: int) -> list[dict[str, Any]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        b: dict[str, Any] = {}
        for k, v in example.items():
            if k == "input_ids" and isinstance(v, torch.Tensor):
                vis = model_map.vision_mask(example)
                keep = vis if vis is not None else torch.zeros_like(v, dtype=torch.bool)
                keep = keep | (v < 3)  # pad/bos/eos-like ids stay where they are
                rnd = _random_tokens(model_map.model, tuple(v.shape), g).to(v.device, v.dtype)
                b[k] = torch.where(keep.to(v.device), v, rnd)
            elif isinstance(v, torch.Tensor) and v.is_floating_point():
                noise = torch.randn(v.shape, generator=g).to(v.device, v.dtype)
                b[k] = noise * v.float().std().clamp(min=1e-6).to(v.dtype) + v.float().mean().to(v.dtype)
            else:
                b[k] = v
        out.append(b)
    return out


def default_calibration(model_map: ModelMap, n: int = 8, seq_len: int = 32, seed: int = 0,
                        example: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """A small default calibration set (see module docstring); deterministic for a given ``seed``."""
    try:
        from ..bench import minibench
        builder = getattr(minibench, "calibration_batches", None)
    except ImportError:
        builder = None
    if builder is not None:
        return list(builder(model_map, n=n, seed=seed))
    if example is not None:
        return _from_example(model_map, example, n, seed)
    if model_map.vision is not None:
        raise DataError(
            f"this {model_map.family} model has a vision tower and no default image data is available; pass "
            "calibration batches (a list of model(**batch) input dicts) or build them from one real input with "
            "spikemllm.calibrate.default_calibration(model_map, example=inputs)")
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = _random_tokens(model_map.model, (1, seq_len), g)
        out.append({"input_ids": ids, "attention_mask": torch.ones_like(ids)})
    return out


def calibration_batches(calib: list[dict[str, Any]] | None, model_map: ModelMap) -> list[dict[str, Any]]:
    """The caller's batches, checked, or the default set."""
    if calib is None:
        return default_calibration(model_map)
    if not isinstance(calib, (list, tuple)) or not calib or not all(isinstance(b, dict) for b in calib):
        raise DataError("calib must be a non-empty list of input dicts for model(**batch); "
                        f"got {type(calib).__name__}")
    return list(calib)
