"""Shared fixtures: a tiny model with planted behaviour and one MED run (session-scoped: MED runs a
forward pass per unit and level, so it is computed once)."""
from __future__ import annotations

import contextlib

import pytest
import torch

import spikemllm
from msts_plants import silence_block
from spikemllm.msts import med


@contextlib.contextmanager
def one_thread():
    """Tiny matmuls are 100x slower with two threads on a shared, busy CPU; restore afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _one_thread_per_test():
    with one_thread():
        yield


@pytest.fixture(scope="session")
def silenced_vlm():
    """qwen2_vl tiny model whose LM block 1 is silent, its inputs, and MED with search curves."""
    with one_thread():
        model, inputs = spikemllm.tiny_model("qwen2_vl", seed=3)
        silence_block(model, 1)
        result = med(model, [inputs], levels=[2, 3, 4, 5])
    return model, inputs, result


@pytest.fixture(scope="session")
def random_bundled():
    """A random model of the bundled architecture (small) and its processor, built here (no download)."""
    from spikemllm.bench import minibench
    from spikemllm.bench.prompts import prompt_text
    from spikemllm.zoo.tiny_vlm import build_config, build_model, build_processor, train_tokenizer

    items = minibench.build("train", n_per_task=6, seed=0)
    tok = train_tokenizer([t for ex in items for t in (prompt_text(ex), " " + ex.answers[0])], vocab_size=300)
    proc = build_processor(tok)
    with one_thread():
        model = build_model(build_config(tok, text_hidden=64, text_layers=2, vision_hidden=32, vision_layers=2)).eval()
    return model, proc
