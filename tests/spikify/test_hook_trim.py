"""The modality hook gives freed heap back only after long prefill-sized calls (a trim in a loop of small calls
costs more than it saves: see TRIM_AFTER_SECONDS)."""
from __future__ import annotations

from types import SimpleNamespace

import torch

import spikemllm
from spikemllm.spikify import hook as hook_mod


def _run(monkeypatch, seconds: float, tokens: int) -> int:
    calls = []
    model, _ = spikemllm.tiny_model("qwen2")
    spikemllm.convert(model, spikemllm.SpikeConfig(timesteps=3), progress=False)
    monkeypatch.setattr(hook_mod, "release_memory", lambda: calls.append(1))
    clock = iter([0.0, seconds])  # the hook's two readings: before and after the call
    monkeypatch.setattr(hook_mod, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    ids = torch.randint(3, model.config.vocab_size, (1, tokens))
    with torch.no_grad():
        model(input_ids=ids)
    return len(calls)


def test_long_prefill_trims(monkeypatch):
    assert _run(monkeypatch, seconds=hook_mod.TRIM_AFTER_SECONDS + 0.1, tokens=hook_mod.TRIM_AFTER_TOKENS) == 1


def test_short_call_does_not_trim(monkeypatch):
    assert _run(monkeypatch, seconds=hook_mod.TRIM_AFTER_SECONDS / 10, tokens=hook_mod.TRIM_AFTER_TOKENS) == 0


def test_decode_sized_call_does_not_trim(monkeypatch):
    assert _run(monkeypatch, seconds=10.0, tokens=hook_mod.TRIM_AFTER_TOKENS - 1) == 0
