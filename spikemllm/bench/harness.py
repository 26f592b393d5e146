"""Evaluate any generating model on benchmark examples: prompt, greedy-generate a short answer, score.

The model is only required to be an ``nn.Module`` with a Hugging Face style ``generate``, so a model that
``spikemllm.convert`` has changed in place is evaluated by exactly the same code as the float model.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from . import distributed
from .example import Example
from .metrics import Record, get_metric
from .prompts import prompt_text

PromptFn = Callable[[Any, Example], str]


def _tokenizer_of(processor_or_tokenizer: Any) -> Any:
    return getattr(processor_or_tokenizer, "tokenizer", processor_or_tokenizer)


def is_multimodal(processor_or_tokenizer: Any) -> bool:
    """True for a processor that takes images (it has an image processor)."""
    return getattr(processor_or_tokenizer, "image_processor", None) is not None


def default_prompt(processor_or_tokenizer: Any, ex: Example) -> str:
    """The model's own chat template with one image and the task's instructions; a plain
    ``<image>\\n...\\nAnswer:`` layout when there is no template."""
    text = prompt_text(ex)
    multimodal = is_multimodal(processor_or_tokenizer)
    content: list[dict[str, str]] = ([{"type": "image"}] if multimodal else []) + [{"type": "text", "text": text}]
    if getattr(processor_or_tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": content if multimodal else text}]
        return processor_or_tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    image_token = getattr(processor_or_tokenizer, "image_token", "<image>") if multimodal else ""
    return f"{image_token}\n{text}\nAnswer:" if image_token else f"{text}\nAnswer:"


def make_batches(examples: list[Example], batch_size: int) -> list[list[Example]]:
    """Consecutive batches that never mix tasks (similar prompt lengths, less padding)."""
    batches: list[list[Example]] = []
    for ex in examples:
        if batches and len(batches[-1]) < batch_size and batches[-1][0].task == ex.task:
            batches[-1].append(ex)
        else:
            batches.append([ex])
    return batches


@torch.no_grad()
def generate_answers(model: torch.nn.Module, processor_or_tokenizer: Any, batch: list[Example],
                     max_new_tokens: int = 16, prompt_fn: PromptFn = default_prompt) -> list[str]:
    """Greedy answers for one batch (left padding, so every row's answer starts at the same column)."""
    tok = _tokenizer_of(processor_or_tokenizer)
    old_side = getattr(tok, "padding_side", "left")
    tok.padding_side = "left"
    try:
        prompts = [prompt_fn(processor_or_tokenizer, ex) for ex in batch]
        if is_multimodal(processor_or_tokenizer):
            inputs = processor_or_tokenizer(text=prompts, images=[ex.image.convert("RGB") for ex in batch],
                                            return_tensors="pt", padding=True)
        else:
            inputs = processor_or_tokenizer(prompts, return_tensors="pt", padding=True)
    finally:
        tok.padding_side = old_side
    from ..placement import input_device, to_device

    inputs = to_device(inputs, input_device(model))  # a dispatched model: its first computing device
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_id)
    new_tokens = out[:, inputs["input_ids"].shape[1]:].cpu()  # the one read per batch: the answers' token ids
    return [t.strip() for t in tok.batch_decode(new_tokens, skip_special_tokens=True)]


def score_records(examples: list[Example], predictions: list[str]) -> list[Record]:
    """Per-example records scored by each example's benchmark metric."""
    return [Record(uid=ex.uid, task=ex.task, prediction=pred, score=get_metric(ex.task).score(pred, ex),
                   category=ex.category, group=ex.group) for ex, pred in zip(examples, predictions)]


def summarize(records: list[Record]) -> dict[str, Any]:
    """Aggregate records per task with each benchmark's own rule, plus the average normalised score."""
    tasks: dict[str, Any] = {}
    for task in dict.fromkeys(r.task for r in records):
        tasks[task] = get_metric(task).aggregate([r for r in records if r.task == task])
    average = sum(t["normalized"] for t in tasks.values()) / len(tasks) if tasks else 0.0
    return {"tasks": tasks, "average": average, "n": len(records)}


def sample_fields(processor_or_tokenizer: Any, ex: Example, prompt_fn: PromptFn = default_prompt) -> dict[str, Any]:
    """What a per-sample log needs beyond the score: the exact prompt, the gold answers and the item
    without its image (lmms-eval's ``input``, ``target`` and ``doc``)."""
    doc = {"uid": ex.uid, "question": ex.question, "answers": list(ex.answers), "category": ex.category,
           "choices": ex.choices, "group": ex.group, **{k: v for k, v in ex.meta.items() if k not in ("image",)}}
    return {"input": prompt_fn(processor_or_tokenizer, ex), "answers": list(ex.answers), "doc": doc}


def evaluate(model: torch.nn.Module, processor_or_tokenizer: Any, examples: list[Example], *,
             batch_size: int = 8, max_new_tokens: int = 16, prompt_fn: PromptFn = default_prompt,
             progress: bool = True, desc: str = "eval", log_samples: bool = False) -> dict[str, Any]:
    """Generate and score ``examples``; shards batches across ranks when run under ``torchrun``.

    Returns a JSON-serialisable dict: ``tasks`` (per-benchmark aggregate, e.g. ``score`` on the
    benchmark's own scale and ``normalized`` in %), ``average`` (mean normalised score), ``records``
    (every prediction with its score), and ``meta`` (timing, world size). Every rank returns the same.
    With ``log_samples`` every record also carries :func:`sample_fields` (prompt, gold answers, item), which
    :mod:`spikemllm.bench.lmms_eval` writes as per-sample JSONL.
    """
    rank, world = distributed.init_from_env()
    was_training = model.training
    model.eval()
    batches = make_batches(examples, batch_size)
    mine = distributed.shard(batches, rank, world)
    start = time.time()
    local: list[tuple[int, list[str]]] = []
    bar = tqdm(mine, desc=desc, disable=not progress or rank != 0, unit="batch", leave=False)
    for index, batch in bar:
        local.append((index, generate_answers(model, processor_or_tokenizer, batch, max_new_tokens, prompt_fn)))
    predictions = [p for batch_preds in distributed.gather(local, world) for p in batch_preds]
    model.train(was_training)
    ordered = [ex for batch in batches for ex in batch]
    records = score_records(ordered, predictions)
    result = summarize(records)
    result["records"] = [r.to_dict() for r in records]
    if log_samples:
        for rec, ex in zip(result["records"], ordered):
            rec.update(sample_fields(processor_or_tokenizer, ex, prompt_fn))
    result["meta"] = {"world_size": world, "seconds": round(time.time() - start, 2), "batch_size": batch_size,
                      "max_new_tokens": max_new_tokens}
    return result
