"""The Walsh-Hadamard rotation: orthogonal for every size, fast path == dense matrix, saves without pickling."""
from __future__ import annotations

import pytest
import torch

from spikemllm.methods.hadamard import HadamardRotation, fwht, hadamard_matrix, split_pow2
from spikemllm.nn.transforms import build_transform, transform_spec


@pytest.mark.parametrize("n", [1, 2, 16, 64, 384, 96, 36, 7])
@pytest.mark.parametrize("randomize", [False, True])
def test_rotation_is_orthogonal(n, randomize):
    q = HadamardRotation(n, seed=3, randomize=randomize).matrix().double()
    assert torch.allclose(q @ q.T, torch.eye(n, dtype=torch.float64), atol=1e-6)


def test_power_of_two_is_the_sylvester_hadamard():
    h = hadamard_matrix(8) * 8 ** 0.5
    assert torch.equal(h.abs(), torch.ones(8, 8, dtype=torch.float64))
    assert torch.allclose(HadamardRotation(8).matrix().double(), hadamard_matrix(8), atol=1e-7)


def test_fast_path_equals_dense_product():
    for n in (64, 384):
        h = HadamardRotation(n, seed=1, randomize=True)
        x = torch.randn(3, 5, n)
        assert torch.allclose(h(x), x @ h.matrix(), atol=1e-5)


def test_outlier_is_spread_over_all_channels():
    x = torch.randn(16, 64) * 0.1
    x[:, 5] = 50.0
    y = HadamardRotation(64)(x)
    ratio = lambda t: (t.abs().amax(1) / t.pow(2).mean(1).sqrt()).mean()  # noqa: E731
    assert ratio(x) > 7 and ratio(y) < 2


def test_split_and_errors():
    assert split_pow2(384) == (128, 3) and split_pow2(64) == (64, 1)
    with pytest.raises(ValueError, match="power-of-two"):
        fwht(torch.zeros(3, 6))
    with pytest.raises(ValueError, match="size 8"):
        HadamardRotation(8)(torch.zeros(2, 4))


def test_spec_round_trip_rebuilds_the_same_transform():
    h = HadamardRotation(96, seed=5, randomize=True)
    h2 = build_transform(transform_spec(h))
    h2.load_state_dict(h.state_dict())
    x = torch.randn(4, 96)
    assert torch.equal(h(x), h2(x))
