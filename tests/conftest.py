"""Shared fixtures for the whole suite."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Every test runs on one torch thread: the models are tiny and the CI machine is small and shared, where
    tiny ops on several threads are 10-20x slower than on one. Tests that need more threads set them."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
