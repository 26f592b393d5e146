"""Train the bundled tiny VLM (LLaVA: CLIP vision tower + Llama) on the mini-benchmark's train split.

Why a trained model: quantization and spiking gaps only mean something on a model that has learned its
task. Runs on one CPU thread (the machine is shared) in about 25 minutes, fixed seed; writes weights,
tokenizer and processor to ``spikemllm/zoo/bundled`` and a JSON log next to them.

    python scripts/train_tiny_vlm.py --log runs/train_tiny_vlm.log
"""
from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch

from spikemllm.bench import run_benchmark
from spikemllm.bench.example import Example
from spikemllm.bench.minibench import build
from spikemllm.bench.prompts import prompt_text
from spikemllm.zoo.tiny_vlm import build_config, build_model, build_processor, train_tokenizer

ROOT = Path(__file__).resolve().parents[1]


def chat_text(processor, text: str) -> str:
    """One user turn with the image and ``text``, ready for the answer."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def chat_prompt(processor, ex: Example) -> str:
    """The generation prompt exactly as the evaluation harness builds it."""
    return chat_text(processor, prompt_text(ex))


CAPTION_PROMPT = "Describe the image."
CAPTION_TASKS = ("docvqa", "scienceqa", "mme")  # where a caption says more than the answer does


def training_items(examples: list[Example], caption_frac: float, seed: int) -> list[tuple[int, str | None, str]]:
    """(image index, question override, answer): every question, plus for a share of the images of the
    shape and document tasks a dense caption ("small red circle, large blue square"). Captions supervise
    every object in the image, not one yes/no bit, which gets the from-scratch vision tower going sooner."""
    rng = np.random.default_rng(seed)
    items: list[tuple[int, str | None, str]] = [(i, None, ex.answers[0]) for i, ex in enumerate(examples)]
    for i, ex in enumerate(examples):
        if ex.task in CAPTION_TASKS and rng.random() < caption_frac:
            items.append((i, CAPTION_PROMPT, ex.meta["caption"]))
    return items


def encode(processor, examples: list[Example], items) -> list[tuple[list[int], list[int]]]:
    """(prompt ids with image tokens expanded, answer ids + EOS) for each training item."""
    tok = processor.tokenizer
    cache: dict[str, list[int]] = {}
    out = []
    for i, question, answer in items:
        ex = examples[i]
        text = chat_prompt(processor, ex) if question is None else chat_text(processor, question)
        if text not in cache:
            cache[text] = processor(text=[text], images=[ex.image], return_tensors="pt")["input_ids"][0].tolist()
        answer_ids = tok(" " + answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        out.append((cache[text], answer_ids))
    return out


def collate(batch, pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded input ids, attention mask and labels (loss on answer tokens only)."""
    length = max(len(p) + len(a) for p, a in batch)
    ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), length), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), length), dtype=torch.long)
    for i, (p, a) in enumerate(batch):
        seq = p + a
        ids[i, : len(seq)] = torch.tensor(seq)
        labels[i, len(p): len(seq)] = torch.tensor(a)
        mask[i, : len(seq)] = 1
    return ids, mask, labels


@torch.no_grad()
def quick_eval(model, processor, examples: list[Example], batch_size: int = 40) -> dict[str, float]:
    """Exact-match rate per task on a held-out sample (progress signal only; official scores come from
    ``spikemllm.bench.run_benchmark``)."""
    model.eval()
    hits: dict[str, list[int]] = {}
    for start in range(0, len(examples), batch_size):
        chunk = examples[start: start + batch_size]
        inputs = processor(text=[chat_prompt(processor, e) for e in chunk], images=[e.image for e in chunk],
                           return_tensors="pt", padding=True)
        out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
        texts = processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        for e, t in zip(chunk, texts):
            hits.setdefault(e.task, []).append(int(t.strip().lower() == e.answers[0].lower()))
    model.train()
    return {k: round(float(np.mean(v)), 3) for k, v in hits.items()}


def per_example_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over examples of each example's mean answer-token loss. With the usual mean over all tokens,
    long answers (3-4 digit strings, captions) outweigh the one-token answers of the yes/no, letter and word
    tasks, and the model stays at the text prior on every task for thousands of steps."""
    shift_logits, shift_labels = logits[:, :-1].float(), labels[:, 1:]
    tok = torch.nn.functional.cross_entropy(shift_logits.transpose(1, 2), shift_labels, ignore_index=-100,
                                            reduction="none")
    valid = (shift_labels != -100).float()
    return ((tok * valid).sum(1) / valid.sum(1).clamp(min=1)).mean()


def widen_projector_init(model) -> None:
    """Initialise the projector like a default ``nn.Linear`` (std 1/sqrt(fan_in)) instead of 0.02: with the
    small init the image tokens start almost identical to one another and the language model learns to
    ignore them (the loss sits at the text-only prior for hundreds of steps)."""
    for layer in (model.model.multi_modal_projector.linear_1, model.model.multi_modal_projector.linear_2):
        torch.nn.init.normal_(layer.weight, std=layer.in_features ** -0.5)
        torch.nn.init.zeros_(layer.bias)


def caption_targets(tokenizer, examples: list[Example]) -> torch.Tensor:
    """Multi-hot (n_images, vocab) of the tokens naming what each image shows (its caption or answer)."""
    out = torch.zeros(len(examples), len(tokenizer))
    for i, ex in enumerate(examples):
        ids = tokenizer(" " + ex.meta.get("caption", ex.answers[0]), add_special_tokens=False)["input_ids"]
        out[i, ids] = 1.0
    return out


def pretrain_vision(model, processor, examples: list[Example], steps: int, batch_size: int, lr: float) -> float:
    """Stage 1: teach the vision tower and projector to say *what is in the image* before the language
    model has to learn *where to look*. The mean of the projected image tokens, read out through the
    language model's final norm and (tied) output embedding, must put its probability on the caption's
    tokens (a bag-of-words caption loss). This direct signal trains the from-scratch ViT in minutes; through
    the language model alone the loss sits at the text prior for a thousand steps."""
    if steps <= 0:
        return float("nan")
    targets = caption_targets(processor.tokenizer, examples)
    lm = model.model.language_model
    params = [p for n, p in model.named_parameters() if "vision_tower" in n or "multi_modal_projector" in n]
    params += [model.get_input_embeddings().weight, lm.norm.weight]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 50) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    model.train()
    losses = []
    for step in range(1, steps + 1):
        idx = torch.randint(len(examples), (batch_size,))
        pixels = processor.image_processor([examples[int(i)].image for i in idx], return_tensors="pt")["pixel_values"]
        feats = model.model.get_image_features(pixel_values=pixels)
        feats = feats.pooler_output if hasattr(feats, "pooler_output") else feats
        feats = torch.cat(list(feats)) if isinstance(feats, (list, tuple)) else feats
        pooled = feats.reshape(batch_size, -1, feats.shape[-1]).mean(dim=1)
        logp = torch.log_softmax(model.lm_head(lm.norm(pooled)), dim=-1)
        tgt = targets[idx]
        loss = -((tgt * logp).sum(-1) / tgt.sum(-1)).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 50 == 0:
            print(f"vision step {step} caption loss {np.mean(losses[-50:]):.4f}", flush=True)
    return float(np.mean(losses[-50:]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-per-task", type=int, default=7000)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=24)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=300)
    ap.add_argument("--init-from", type=Path, default=None, help="continue training a folder saved by this script")
    ap.add_argument("--data-seed", type=int, default=None, help="seed of the train split (default: --seed); a "
                    "continued run can draw fresh training items")
    ap.add_argument("--wide-projector", action="store_true", help="1/sqrt(fan_in) projector init instead of 0.02")
    ap.add_argument("--vision-steps", type=int, default=0, help="stage 1: bag-of-words caption steps")
    ap.add_argument("--vision-batch-size", type=int, default=32)
    ap.add_argument("--vision-lr", type=float, default=2e-3)
    ap.add_argument("--vision-lr-mult", type=float, default=2.0, help="learning-rate factor for the vision "
                    "tower and projector, which start from scratch and must catch up with the language model")
    ap.add_argument("--eval-n", type=int, default=30, help="held-out items per task for the progress check")
    ap.add_argument("--caption-frac", type=float, default=0.0, help="share of shape/document images that "
                    "also get a dense-caption training item")
    ap.add_argument("--tasks", nargs="+", default=None, help="train on a subset of tasks (for experiments)")
    ap.add_argument("--final-n", type=int, default=100, help="held-out items per task for the final, official scores")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared machine)")
    ap.add_argument("--init-range", type=float, default=0.02, help="std of the text model's initial weights; "
                    "0.1 breaks the plateau where a from-scratch LM ignores what it must match (see RESULTS.md)")
    ap.add_argument("--max-minutes", type=float, default=40.0, help="stop early (and say so) past this")
    ap.add_argument("--out", type=Path, default=ROOT / "spikemllm" / "zoo" / "bundled")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    t0 = time.time()
    evals: list[dict] = []

    data_seed = args.seed if args.data_seed is None else args.data_seed
    train = build("train", args.n_per_task, seed=data_seed, tasks=args.tasks)
    held_out = build("test", args.eval_n, seed=args.seed, tasks=args.tasks)
    items = training_items(train, args.caption_frac, args.seed)
    corpus = [t for ex in train[::7] for t in (prompt_text(ex), " " + ex.answers[0], " " + ex.meta["caption"])]
    corpus.append(CAPTION_PROMPT)
    if args.init_from is not None:  # continue a previous run (same tokenizer, same architecture)
        from spikemllm.zoo import load_bundled

        model, processor = load_bundled(args.init_from)
        tokenizer = processor.tokenizer
    else:
        tokenizer = train_tokenizer(corpus)
        processor = build_processor(tokenizer)
        config = build_config(tokenizer)
        config.text_config.initializer_range = args.init_range
        model = build_model(config)
    if args.wide_projector and args.init_from is None:
        widen_projector_init(model)
    n_params = sum(p.numel() for p in model.parameters())
    encoded = encode(processor, train, items)
    print(f"data+tokenizer {time.time() - t0:.0f}s, {len(train)} questions + {len(items) - len(train)} captions, vocab {len(tokenizer)}, "
          f"{n_params / 1e6:.2f}M parameters", flush=True)

    vision = [p for n, p in model.named_parameters() if "vision_tower" in n or "multi_modal_projector" in n]
    ids_vision = {id(p) for p in vision}
    text = [p for p in model.parameters() if id(p) not in ids_vision]
    t_vision = time.time()
    vision_loss = pretrain_vision(model, processor, train, args.vision_steps, args.vision_batch_size, args.vision_lr)
    vision_seconds = time.time() - t_vision
    print(f"stage 1 done in {vision_seconds:.0f}s, caption loss {vision_loss:.4f}", flush=True)
    evals.append({"step": 0, "exact_match": quick_eval(model, processor, held_out)})
    print(f"eval {evals[-1]}", flush=True)

    opt = torch.optim.AdamW([{"params": text, "lr": args.lr}, {"params": vision, "lr": args.lr * args.vision_lr_mult}],
                            weight_decay=0.01, betas=(0.9, 0.98))
    warmup = max(1, args.steps // 25)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps)))
    order: list[int] = []
    history: list[float] = []
    model.train()
    t_train = time.time()
    for step in range(1, args.steps + 1):
        if len(order) < args.batch_size:
            order += torch.randperm(len(items)).tolist()
        idx, order = order[: args.batch_size], order[args.batch_size:]
        ids, mask, labels = collate([encoded[i] for i in idx], tokenizer.pad_token_id)
        images = [train[items[i][0]].image for i in idx]
        pixels = processor.image_processor(images, return_tensors="pt")["pixel_values"]
        logits = model(input_ids=ids, attention_mask=mask, pixel_values=pixels).logits
        loss = per_example_loss(logits, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        history.append(loss.item())
        if step % 25 == 0:
            print(f"step {step} loss {np.mean(history[-25:]):.4f} lr {sched.get_last_lr()[0]:.2e} "
                  f"{time.time() - t_train:.0f}s", flush=True)
        if step % args.eval_every == 0 or step == args.steps:
            evals.append({"step": step, "exact_match": quick_eval(model, processor, held_out)})
            print(f"eval {evals[-1]}", flush=True)
        if (time.time() - t0) / 60 > args.max_minutes:
            print(f"stopping early at step {step}: past --max-minutes {args.max_minutes}", flush=True)
            break

    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    processor.save_pretrained(args.out)
    summary = {
        "seed": args.seed, "data_seed": data_seed, "init_from": str(args.init_from) if args.init_from else None,
        "steps": step, "batch_size": args.batch_size, "lr": args.lr,
        "n_train": len(train), "n_captions": len(items) - len(train), "parameters": n_params, "threads": 1,
        "vision_steps": args.vision_steps, "vision_seconds": round(vision_seconds, 1),
        "vision_caption_loss": round(vision_loss, 4) if args.vision_steps > 0 else None,
        "train_seconds": round(time.time() - t_train, 1), "total_seconds": round(time.time() - t0, 1),
        "final_loss": round(float(np.mean(history[-50:])), 4), "evals": evals,
    }
    model.eval()
    bench = tuple(args.tasks) if args.tasks else ("textvqa", "docvqa", "ocrbench", "scienceqa", "mme")
    final = run_benchmark(model, processor, bench, split="test", limit=args.final_n, seed=args.seed, progress=False)
    summary["held_out"] = {
        "n_per_task": args.final_n, "average_normalized": round(final["average"], 2),
        "tasks": {t: {"score": round(v["score"], 2), "normalized": round(v["normalized"], 2), "unit": v["unit"]}
                  for t, v in final["tasks"].items()},
    }
    (args.out / "training_log.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
