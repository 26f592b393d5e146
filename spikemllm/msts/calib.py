"""Calibration batches for MED from benchmark items: the harness's own prompt plus the gold answer.

Appending the answer (teacher forcing) puts the positions that matter -- the ones that produce the answer --
into the batch, so the KL that the sensitivities measure is taken where a benchmark scores. The prompt is
built exactly as :mod:`spikemllm.bench.harness` builds it for generation, so calibration and evaluation see
the same token layout.
"""
from __future__ import annotations

import math
from typing import Any

import torch


def calibration_from_examples(processor: Any, examples: list[Any], batch_size: int = 4,
                              with_answers: bool = True) -> list[dict[str, Any]]:
    """Model-input dicts for ``examples`` (:class:`spikemllm.bench.Example`), ``batch_size`` per batch."""
    from ..bench.harness import default_prompt, is_multimodal

    if not examples:
        raise ValueError("no examples to build calibration batches from")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} is invalid; allowed: integers >= 1")
    tok = getattr(processor, "tokenizer", processor)
    old_side = getattr(tok, "padding_side", "left")
    tok.padding_side = "left"
    try:
        out = []
        for i in range(0, len(examples), batch_size):
            chunk = examples[i:i + batch_size]
            texts = [default_prompt(processor, ex) + (" " + ex.answers[0] if with_answers else "") for ex in chunk]
            if is_multimodal(processor):
                enc = processor(text=texts, images=[ex.image.convert("RGB") for ex in chunk], return_tensors="pt",
                                padding=True)
            else:
                enc = processor(texts, return_tensors="pt", padding=True)
            out.append({k: v for k, v in enc.items() if isinstance(v, torch.Tensor)})
        return out
    finally:
        tok.padding_side = old_side


def minibench_calibration(processor: Any, n: int = 10, seed: int = 0, split: str = "train",
                          batch_size: int = 5) -> list[dict[str, Any]]:
    """``n`` items spread over the five mini-benchmark tasks (train split: never the held-out items)."""
    from ..bench import minibench
    from ..bench.example import BENCHMARKS

    if n < 1:
        raise ValueError(f"n={n} calibration items is invalid; allowed: integers >= 1")
    per_task = math.ceil(n / len(BENCHMARKS))
    items = minibench.build(split, n_per_task=per_task, seed=seed)
    by_task: dict[str, list[Any]] = {}
    for ex in items:
        by_task.setdefault(ex.task, []).append(ex)
    picked: list[Any] = []
    while len(picked) < n and any(by_task.values()):  # round-robin: every task is represented
        for task in list(by_task):
            if by_task[task] and len(picked) < n:
                picked.append(by_task[task].pop(0))
    return calibration_from_examples(processor, picked, batch_size=batch_size)
