"""Calibration batches for MED from benchmark items: the harness's own prompt plus the gold answer.

Appending the answer and the end-of-sequence token (teacher forcing, as the bundled model was trained) puts
the positions that matter -- the ones that produce the answer -- into the batch, and ``labels`` marks them
(the Hugging Face convention, -100 elsewhere), so the KL that the sensitivities measure is taken where a
benchmark scores rather than on the prompt's own text. The prompt is
built exactly as :mod:`spikemllm.bench.harness` builds it for generation, so calibration and evaluation see
the same token layout.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from ..errors import ConfigError, DataError


def calibration_from_examples(processor: Any, examples: list[Any], batch_size: int = 4,
                              with_answers: bool = True) -> list[dict[str, Any]]:
    """Model-input dicts for ``examples`` (:class:`spikemllm.bench.Example`), ``batch_size`` per batch.

    With ``with_answers`` each batch also holds ``labels``: the answer's token ids (and EOS), -100 elsewhere.
    """
    from ..bench.harness import default_prompt

    if not examples:
        raise DataError("no examples to build calibration batches from")
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size} is invalid; allowed: integers >= 1")
    tok = getattr(processor, "tokenizer", processor)
    old_side = getattr(tok, "padding_side", "left")
    tok.padding_side = "left"
    try:
        out = []
        eos = getattr(tok, "eos_token", None) or ""
        for i in range(0, len(examples), batch_size):
            chunk = examples[i:i + batch_size]
            prompts = [default_prompt(processor, ex) for ex in chunk]
            texts = [p + " " + ex.answers[0] + eos for p, ex in zip(prompts, chunk)] if with_answers else prompts
            enc = _encode(processor, texts, chunk)
            batch = {k: v for k, v in enc.items() if isinstance(v, torch.Tensor)}
            if with_answers:  # left padding: each row's answer is its last (full - prompt) tokens
                n_prompt = _encode(processor, prompts, chunk)["attention_mask"].sum(1)
                n_full = batch["attention_mask"].sum(1)
                labels = torch.full_like(batch["input_ids"], -100)
                for r, k in enumerate((n_full - n_prompt).tolist()):
                    labels[r, labels.shape[1] - k:] = batch["input_ids"][r, labels.shape[1] - k:]
                batch["labels"] = labels
            out.append(batch)
        return out
    finally:
        tok.padding_side = old_side


def _encode(processor: Any, texts: list[str], examples: list[Any]) -> Any:
    from ..bench.harness import is_multimodal

    if is_multimodal(processor):
        return processor(text=texts, images=[ex.image.convert("RGB") for ex in examples], return_tensors="pt",
                         padding=True)
    return processor(texts, return_tensors="pt", padding=True)


def minibench_calibration(processor: Any, n: int = 10, seed: int = 0, split: str = "train",
                          batch_size: int = 5) -> list[dict[str, Any]]:
    """``n`` items spread over the five mini-benchmark tasks (train split: never the held-out items)."""
    from ..bench import minibench
    from ..bench.example import BENCHMARKS

    if n < 1:
        raise ConfigError(f"n={n} calibration items is invalid; allowed: integers >= 1")
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
