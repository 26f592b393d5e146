"""Helpers shared by the conversion tests (imported as ``spikify_helpers``; pytest puts this folder on sys.path):
tiny models (no downloads), running every mode, fidelity measures."""
from __future__ import annotations

from typing import Any

import torch

import spikemllm

TV_TT = {"vision": 3, "text": 4}  # the paper's headline MSTS setting with TC-LIF


def output_of(out: Any) -> torch.Tensor:
    """Logits of a causal LM / VLM, last hidden state of an encoder."""
    logits = getattr(out, "logits", None)
    return logits if logits is not None else out.last_hidden_state


def forward(model: torch.nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
    with torch.no_grad():
        return output_of(model(**inputs))


def converted(family: str, seed: int = 0, **cfg: Any) -> tuple[torch.nn.Module, dict[str, Any], torch.Tensor]:
    """(converted model, inputs, FP output of the same model before conversion)."""
    model, inputs = spikemllm.tiny_model(family, seed=seed)
    fp = forward(model, inputs)
    spikemllm.convert(model, spikemllm.SpikeConfig(**cfg), progress=False)
    return model, inputs, fp


def run_modes(model: torch.nn.Module, inputs: dict[str, Any],
              modes: tuple[str, ...] = ("fused", "faithful", "fakequant")) -> dict[str, torch.Tensor]:
    out = {}
    for mode in modes:
        spikemllm.set_mode(model, mode)
        out[mode] = forward(model, inputs)
    spikemllm.set_mode(model, "fused")
    return out


def sqnr_db(ref: torch.Tensor, x: torch.Tensor) -> float:
    return float(10 * torch.log10(ref.double().pow(2).sum() / (ref.double() - x.double()).pow(2).sum()))


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.double().flatten(), b.double().flatten(), dim=0))
