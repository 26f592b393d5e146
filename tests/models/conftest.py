import pytest


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one thread is fastest and fair to a shared machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
