"""Method/calibration tests run on one torch thread: the CI machine is small and shared, and tiny ops on
several threads there are 10-20x slower than on one."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
