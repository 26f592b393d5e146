"""Train the bundled tiny VLM (LLaVA: CLIP vision tower + Llama) on the mini-benchmark's train split.

Why a trained model: quantization and spiking gaps only mean something on a model that has learned its
task. Fixed seed, two CPU threads, under 45 minutes; writes weights, tokenizer and processor to
``spikemllm/zoo/bundled`` and a JSON log next to them.

Why three stages. Trained end to end from scratch, a few-million-parameter LLaVA sits at the text-only
prior for thousands of steps (eight such runs are logged in benchmarks/RESULTS.md): the language model
cannot learn *where to look* before the vision tower says *what is there*, and the vision tower gets no
useful gradient before the language model looks. So the two halves first learn separately, meeting at
an interface both can be trained to directly — each image token is made to carry the embedding of what
its 16-pixel patch shows (the generator records it in ``meta["patch_tags"]``: a digit, a word, a form
key, a shape's size/colour/kind/column, or nothing):

1. **symbolic language model** — the Llama learns every task with the image tokens replaced by the sum of
   the embeddings of their patch tags (content tags use the model's own token embeddings, so copying a
   digit out of the image is copying a token; column and blank tags get learned vectors);
2. **vision to symbols** — the CLIP tower and projector learn to output those vectors from pixels
   (per-patch regression, the language model frozen);
3. **joint** — the whole LLaVA is fine-tuned end to end on images, keeping a small weight on the
   per-patch regression so the interface does not drift.

The shipped model is a plain ``LlavaForConditionalGeneration``; the tag vectors are training scaffolding.

    python scripts/train_tiny_vlm.py            # the shipped run (see benchmarks/RESULTS.md)
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
import torch.nn.functional as F

from spikemllm.bench import run_benchmark
from spikemllm.bench.example import BENCHMARKS, Example
from spikemllm.bench.minibench import build
from spikemllm.bench.prompts import prompt_text
from spikemllm.zoo.tiny_vlm import IMAGE_TOKENS, build_config, build_model, build_processor, train_tokenizer

ROOT = Path(__file__).resolve().parents[1]
BLANK = "<blank>"
LEARNED_ONLY = ("col", "char:")  # tags with no token of their own (a column, a letter inside a word)


def chat_prompt(processor, ex: Example) -> str:
    """The generation prompt exactly as the evaluation harness builds it."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt_text(ex)}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def target_answer(ex: Example) -> str:
    """The answer to train on: TextVQA's first annotator may disagree with the rest, the word does not."""
    return ex.meta.get("word", ex.answers[0])


def encode(processor, examples: list[Example]) -> list[tuple[list[int], list[int]]]:
    """(prompt ids with image tokens expanded, answer ids + EOS) for each example."""
    tok = processor.tokenizer
    cache: dict[str, list[int]] = {}
    out = []
    for ex in examples:
        text = chat_prompt(processor, ex)
        if text not in cache:
            cache[text] = processor(text=[text], images=[ex.image], return_tensors="pt")["input_ids"][0].tolist()
        answer_ids = tok(" " + target_answer(ex), add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        out.append((cache[text], answer_ids))
    return out


class TagTable(torch.nn.Module):
    """The vector each patch tag stands for: the sum of its token embeddings (content tags) plus a learned
    offset (the only part column, letter and blank tags have). A patch's vector is the sum over its tags."""

    def __init__(self, tags: list[str], tokenizer, embedding: torch.nn.Embedding):
        super().__init__()
        self.tags = tags
        self.embedding = embedding
        counts = torch.zeros(len(tags), embedding.num_embeddings)
        for i, tag in enumerate(tags):
            if tag == BLANK or tag.startswith(LEARNED_ONLY):
                continue
            text = tag if tag.isdigit() else " " + tag
            for t in tokenizer(text, add_special_tokens=False)["input_ids"]:
                counts[i, t] += 1
        self.register_buffer("counts", counts)
        offset = torch.zeros(len(tags), embedding.embedding_dim)
        learned_only = [i for i, t in enumerate(tags) if t == BLANK or t.startswith(LEARNED_ONLY)]
        offset[learned_only] = torch.randn(len(learned_only), embedding.embedding_dim) * embedding.weight.std().item()
        self.offset = torch.nn.Parameter(offset)

    def forward(self, multi_hot: torch.Tensor) -> torch.Tensor:
        """(..., n_tags) multi-hot -> (..., hidden) patch vectors."""
        table = self.counts @ self.embedding.weight + self.offset
        return multi_hot.to(table.dtype) @ table


def tag_multi_hot(examples: list[Example], tags: list[str]) -> torch.Tensor:
    """(n, IMAGE_TOKENS, n_tags) uint8; a patch with no tag gets the blank tag."""
    index = {t: i for i, t in enumerate(tags)}
    out = torch.zeros(len(examples), IMAGE_TOKENS, len(tags), dtype=torch.uint8)
    for n, ex in enumerate(examples):
        grid = ex.meta["patch_tags"]
        if len(grid) != IMAGE_TOKENS:
            raise ValueError(f"{ex.uid}: {len(grid)} patch tags for {IMAGE_TOKENS} image tokens")
        for p, cell in enumerate(grid):
            for t in cell or (BLANK,):
                out[n, p, index[t]] = 1
    return out


class Batches:
    """Shuffled batches of training indices, an epoch at a time."""

    def __init__(self, n: int, batch_size: int):
        self.n, self.batch_size, self.order = n, batch_size, []

    def next(self) -> list[int]:
        if len(self.order) < self.batch_size:
            self.order += torch.randperm(self.n).tolist()
        idx, self.order = self.order[: self.batch_size], self.order[self.batch_size:]
        return idx


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


def lm_logits(model, ids: torch.Tensor, mask: torch.Tensor, patch_vectors: torch.Tensor) -> torch.Tensor:
    """Language-model logits with the image-token embeddings replaced by ``patch_vectors`` (b, 36, h):
    what LLaVA's forward does with projected image features, open so stage 1 can feed tag vectors."""
    embeds = model.get_input_embeddings()(ids)
    image = ids == model.config.image_token_id
    embeds = embeds.masked_scatter(image.unsqueeze(-1), patch_vectors.to(embeds.dtype).reshape(-1, embeds.shape[-1]))
    hidden = model.model.language_model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
    return model.lm_head(hidden)


def image_features(model, pixels: torch.Tensor) -> torch.Tensor:
    """Projected image tokens (b, 36, h), as LLaVA computes them."""
    feats = model.model.get_image_features(pixel_values=pixels)
    feats = getattr(feats, "pooler_output", feats)
    return torch.stack(list(feats)) if isinstance(feats, (list, tuple)) else feats.reshape(len(pixels), -1, feats.shape[-1])


def per_example_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over examples of each example's mean answer-token loss, so 4-digit answers do not outweigh the
    one-token answers of the yes/no, letter and word tasks."""
    shift_logits, shift_labels = logits[:, :-1].float(), labels[:, 1:]
    tok = F.cross_entropy(shift_logits.transpose(1, 2), shift_labels, ignore_index=-100, reduction="none")
    valid = (shift_labels != -100).float()
    return ((tok * valid).sum(1) / valid.sum(1).clamp(min=1)).mean()


def patch_loss(pred: torch.Tensor, combo: torch.Tensor, table: torch.Tensor, blank: torch.Tensor) -> torch.Tensor:
    """How far each image token is from the vector of its patch's tags.

    ``table`` holds the vectors of every tag combination that occurs (blank, a digit, "large red circle
    col3", ...); ``combo`` (b, 36) indexes it. A cross-entropy over negative squared distances makes each
    token land nearer its own vector than any other (plain regression collapses to the mean vector when a
    ViT from scratch cannot yet tell patches apart), and a relative squared error pulls it onto the vector,
    which is what the language model was trained to read. Patches that show something weigh 4x the blank
    ones (most patches are blank, and the few that are not carry the answers)."""
    flat = pred.reshape(-1, pred.shape[-1])
    scale = table.pow(2).sum(-1).mean().clamp(min=1e-6)
    dist = torch.cdist(flat, table).pow(2) / scale
    ce = F.cross_entropy(-4.0 * dist, combo.reshape(-1), reduction="none")
    mse = dist.gather(1, combo.reshape(-1, 1)).squeeze(1)
    weight = 1.0 + 3.0 * (~blank.reshape(-1)).float()
    return ((ce + mse) * weight).sum() / weight.sum()


class Pixels:
    """All training images as uint8, normalised per batch exactly as the CLIP processor does (checked)."""

    def __init__(self, examples: list[Example], processor):
        self.images = torch.from_numpy(np.stack([np.asarray(e.image) for e in examples])).permute(0, 3, 1, 2)
        ip = processor.image_processor
        self.mean = torch.tensor(ip.image_mean).view(1, 3, 1, 1)
        self.std = torch.tensor(ip.image_std).view(1, 3, 1, 1)
        reference = ip([e.image for e in examples[:2]], return_tensors="pt")["pixel_values"]
        if not torch.allclose(self[[0, 1]], reference, atol=1e-5):
            raise RuntimeError("the image processor no longer matches plain CLIP normalisation; use it directly")

    def __getitem__(self, idx) -> torch.Tensor:
        return (self.images[idx].float() / 255 - self.mean) / self.std


def update(loss: torch.Tensor, params: list[torch.nn.Parameter], opt, sched) -> float:
    """One optimiser step with gradient clipping at norm 1; returns the loss value."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


def cosine_schedule(opt, steps: int, warmup: int):
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))


@torch.no_grad()
def symbolic_eval(model, tags: TagTable, examples: list[Example], encoded, multi_hot) -> dict[str, float]:
    """Exact match per task with tag vectors in place of the image (greedy, one example at a time)."""
    model.eval()
    hits: dict[str, list[int]] = {}
    eos = model.generation_config.eos_token_id
    for n, ex in enumerate(examples):
        prompt, answer = encoded[n]
        ids = torch.tensor([prompt])
        vec = tags(multi_hot[n: n + 1])
        out: list[int] = []
        for _ in range(len(answer) + 2):
            nxt = int(lm_logits(model, ids, torch.ones_like(ids), vec)[0, -1].argmax())
            if nxt == eos:
                break
            out.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
        hits.setdefault(ex.task, []).append(int(out + [eos] == answer))
    model.train()
    return {k: round(float(np.mean(v)), 3) for k, v in hits.items()}


@torch.no_grad()
def cell_accuracy(model, processor, tags: TagTable, examples: list[Example], multi_hot: torch.Tensor) -> dict[str, float]:
    """Per task, the share of non-blank patches whose image token is nearest (L2) to its own tag vector among
    all distinct tag combinations of ``examples``: how well stage 2 reads the patches."""
    model.eval()
    combos, inverse = torch.unique(multi_hot.reshape(-1, multi_hot.shape[-1]), dim=0, return_inverse=True)
    table = tags(combos)
    pixels = processor.image_processor([e.image for e in examples], return_tensors="pt")["pixel_values"]
    feats = torch.cat([image_features(model, pixels[i:i + 50]) for i in range(0, len(examples), 50)])
    nearest = torch.cdist(feats.reshape(-1, feats.shape[-1]), table).argmin(-1).reshape(len(examples), -1)
    right = (nearest == inverse.reshape(len(examples), -1)) & ~multi_hot[..., 0].bool()
    out: dict[str, float] = {}
    for task in dict.fromkeys(e.task for e in examples):
        rows = [i for i, e in enumerate(examples) if e.task == task]
        out[task] = round(float(right[rows].sum() / (~multi_hot[rows, :, 0].bool()).sum().clamp(min=1)), 3)
    model.train()
    return out


@torch.no_grad()
def quick_eval(model, processor, examples: list[Example], batch_size: int = 40) -> dict[str, float]:
    """Exact match per task on held-out images (progress signal only; the official scores come from
    ``spikemllm.bench.run_benchmark`` at the end)."""
    model.eval()
    hits: dict[str, list[int]] = {}
    for start in range(0, len(examples), batch_size):
        chunk = examples[start: start + batch_size]
        inputs = processor(text=[chat_prompt(processor, e) for e in chunk], images=[e.image for e in chunk],
                           return_tensors="pt", padding=True)
        out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
        texts = processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        for e, t in zip(chunk, texts):
            hits.setdefault(e.task, []).append(int(t.strip().lower() == target_answer(e).lower()))
    model.train()
    return {k: round(float(np.mean(v)), 3) for k, v in hits.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-per-task", type=int, default=7000)
    ap.add_argument("--lm-steps", type=int, default=1500, help="stage 1: symbolic language-model steps")
    ap.add_argument("--lm-batch-size", type=int, default=64)
    ap.add_argument("--lm-lr", type=float, default=1e-3)
    ap.add_argument("--tag-noise", type=float, default=0.3, help="stage 1 Gaussian noise on the tag vectors, relative "
                    "to their RMS: the vision tower's outputs are never exact, and a language model trained on exact "
                    "vectors lost most of its OCR accuracy on them (93 %% -> 17 %% exact match)")
    ap.add_argument("--vision-steps", type=int, default=3000, help="stage 2: vision-to-symbols steps")
    ap.add_argument("--vision-batch-size", type=int, default=64)
    ap.add_argument("--vision-lr", type=float, default=4e-4, help="a from-scratch ViT stalls at 1e-3 and above")
    ap.add_argument("--steps", type=int, default=3600, help="stage 3: joint end-to-end steps")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--aux-weight", type=float, default=0.5, help="stage 3 weight of the per-patch regression")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--eval-n", type=int, default=30, help="held-out items per task for the progress checks")
    ap.add_argument("--final-n", type=int, default=100, help="held-out items per task for the final, official scores")
    ap.add_argument("--tasks", nargs="+", default=None, help="train on a subset of tasks (for experiments)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init-range", type=float, default=0.1, help="std of the text model's initial weights; the "
                    "default 0.02 leaves a from-scratch Llama unable to match words for hundreds of steps")
    ap.add_argument("--max-minutes", type=float, default=44.0, help="cut stage 3 short (and say so) past this")
    ap.add_argument("--out", type=Path, default=ROOT / "spikemllm" / "zoo" / "bundled")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    t0 = time.time()
    log: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "stages": {}}

    tasks = tuple(args.tasks) if args.tasks else BENCHMARKS
    train = build("train", args.n_per_task, seed=args.seed, tasks=tasks)
    held_out = build("test", args.eval_n, seed=args.seed, tasks=tasks)
    corpus = [t for ex in train[::7] for t in (prompt_text(ex), " " + target_answer(ex), " " + ex.meta["caption"])]
    tokenizer = train_tokenizer(corpus)
    processor = build_processor(tokenizer)
    config = build_config(tokenizer)
    config.text_config.initializer_range = args.init_range
    model = build_model(config)
    n_params = sum(p.numel() for p in model.parameters())
    # Held-out items can name a tag the (small) train split lacks; with 7000 items per task both give the same set.
    tag_names = [BLANK] + sorted({t for ex in train + held_out for cell in ex.meta["patch_tags"] for t in cell})
    tags = TagTable(tag_names, tokenizer, model.get_input_embeddings())
    encoded, held_encoded = encode(processor, train), encode(processor, held_out)
    hot, held_hot = tag_multi_hot(train, tag_names), tag_multi_hot(held_out, tag_names)
    blank = hot[..., 0].bool()
    combos, combo_idx = torch.unique(hot.reshape(-1, len(tag_names)), dim=0, return_inverse=True)
    combo_idx = combo_idx.reshape(len(train), IMAGE_TOKENS)
    pixels = Pixels(train, processor)
    pad = tokenizer.pad_token_id
    print(f"data+tokenizer {time.time() - t0:.0f}s: {len(train)} items, vocab {len(tokenizer)}, {len(tag_names)} "
          f"patch tags in {len(combos)} combinations, {n_params / 1e6:.2f}M parameters", flush=True)
    model.train()
    batches = Batches(len(train), args.lm_batch_size)

    # Stage 1: the language model learns the tasks on tag vectors.
    t1 = time.time()
    lm_params = list(model.model.language_model.parameters()) + [tags.offset]
    opt = torch.optim.AdamW(lm_params, lr=args.lm_lr, weight_decay=0.01, betas=(0.9, 0.98))
    sched = cosine_schedule(opt, args.lm_steps, max(1, args.lm_steps // 20))
    history: list[float] = []
    evals: list[dict] = []
    for step in range(1, args.lm_steps + 1):
        idx = batches.next()
        ids, mask, labels = collate([encoded[i] for i in idx], pad)
        vectors = tags(hot[idx])
        rms = vectors.pow(2).mean(-1, keepdim=True).sqrt()
        vectors = vectors + args.tag_noise * rms.detach() * torch.randn_like(vectors)
        loss = per_example_loss(lm_logits(model, ids, mask, vectors), labels)
        history.append(update(loss, lm_params, opt, sched))
        if step % 100 == 0:
            print(f"[1 symbolic LM] step {step} loss {np.mean(history[-100:]):.4f} {time.time() - t1:.0f}s", flush=True)
        if step % args.eval_every == 0 or step == args.lm_steps:
            evals.append({"step": step, "exact_match": symbolic_eval(model, tags, held_out, held_encoded, held_hot)})
            print(f"[1 symbolic LM] held-out {evals[-1]}", flush=True)
    log["stages"]["1_symbolic_lm"] = {"steps": args.lm_steps, "seconds": round(time.time() - t1, 1),
                                      "final_loss": round(float(np.mean(history[-100:])), 4), "evals": evals}

    # Stage 2: the vision tower and projector learn to emit the tag vectors (language model frozen).
    t2 = time.time()
    with torch.no_grad():
        table = tags.counts @ tags.embedding.weight + tags.offset
    vision_params = [p for n, p in model.named_parameters() if "vision_tower" in n or "multi_modal_projector" in n]
    opt = torch.optim.AdamW(vision_params, lr=args.vision_lr, weight_decay=0.01, betas=(0.9, 0.98))
    sched = cosine_schedule(opt, args.vision_steps, max(1, args.vision_steps // 20))
    batches = Batches(len(train), args.vision_batch_size)
    history = []
    for step in range(1, args.vision_steps + 1):
        idx = batches.next()
        loss = patch_loss(image_features(model, pixels[idx]), combo_idx[idx], combos.float() @ table, blank[idx])
        history.append(update(loss, vision_params, opt, sched))
        if step % 100 == 0:
            print(f"[2 vision->tags] step {step} loss {np.mean(history[-100:]):.4f} {time.time() - t2:.0f}s", flush=True)
    stage2_cells = cell_accuracy(model, processor, tags, held_out, held_hot)
    stage2_eval = quick_eval(model, processor, held_out)
    print(f"[2 vision->tags] held-out patches read right {stage2_cells}; answers on images {stage2_eval}", flush=True)
    log["stages"]["2_vision_to_tags"] = {"steps": args.vision_steps, "seconds": round(time.time() - t2, 1),
                                         "final_loss": round(float(np.mean(history[-100:])), 4),
                                         "evals": [{"step": args.vision_steps, "exact_match": stage2_eval,
                                                    "patches_read_right": stage2_cells}]}

    # Stage 3: everything end to end on images, the per-patch regression kept as a light anchor.
    t3 = time.time()
    vision_ids = {id(p) for p in vision_params}
    text_params = [p for p in model.parameters() if id(p) not in vision_ids] + [tags.offset]
    opt = torch.optim.AdamW([{"params": text_params}, {"params": vision_params}], lr=args.lr, weight_decay=0.01,
                            betas=(0.9, 0.98))
    sched = cosine_schedule(opt, args.steps, max(1, args.steps // 20))
    batches = Batches(len(train), args.batch_size)
    history, evals = [], []
    step = 0
    for step in range(1, args.steps + 1):
        idx = batches.next()
        ids, mask, labels = collate([encoded[i] for i in idx], pad)
        feats = image_features(model, pixels[idx])
        answer_loss = per_example_loss(lm_logits(model, ids, mask, feats), labels)
        aux = patch_loss(feats, combo_idx[idx], tags(combos).detach(), blank[idx])
        loss = answer_loss + args.aux_weight * aux
        update(loss, text_params + vision_params, opt, sched)
        history.append(answer_loss.item())
        if step % 50 == 0:
            print(f"[3 joint] step {step} answer loss {np.mean(history[-50:]):.4f} aux {aux.item():.3f} "
                  f"{time.time() - t3:.0f}s", flush=True)
        if step % args.eval_every == 0 or step == args.steps:
            evals.append({"step": step, "exact_match": quick_eval(model, processor, held_out)})
            print(f"[3 joint] held-out {evals[-1]}", flush=True)
        if (time.time() - t0) / 60 > args.max_minutes:
            print(f"stopping stage 3 at step {step}: past --max-minutes {args.max_minutes}", flush=True)
            evals.append({"step": step, "exact_match": quick_eval(model, processor, held_out)})
            break
    log["stages"]["3_joint"] = {"steps": step, "planned_steps": args.steps, "seconds": round(time.time() - t3, 1),
                                "final_answer_loss": round(float(np.mean(history[-50:])), 4), "evals": evals}

    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    processor.save_pretrained(args.out)
    log.update({"seed": args.seed, "threads": args.threads, "n_train": len(train), "parameters": n_params,
                "train_seconds": round(time.time() - t1, 1), "total_seconds": round(time.time() - t0, 1)})
    model.eval()
    final = run_benchmark(model, processor, tasks, split="test", limit=args.final_n, seed=args.seed, progress=False)
    log["held_out"] = {
        "n_per_task": args.final_n, "average_normalized": round(final["average"], 2),
        "tasks": {t: {"score": round(v["score"], 2), "normalized": round(v["normalized"], 2), "unit": v["unit"]}
                  for t, v in final["tasks"].items()},
    }
    (args.out / "training_log.json").write_text(json.dumps(log, indent=1))
    print(json.dumps(log["held_out"]), flush=True)


if __name__ == "__main__":
    main()
