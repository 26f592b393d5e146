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
