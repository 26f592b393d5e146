"""Peer cross-check: SpikingJelly's IF neurons with soft reset emit our IF coder's spike trains.

Our neuron fires when its membrane reaches ``theta - 1/2``; SpikingJelly's fires at ``v >= v_threshold``.
Charging SpikingJelly's neuron with ``u + 1/2`` (``u + sign(u)/2`` for the ternary one) at the first step and
0 afterwards makes the two the same dynamics; both run in float64 where every step is exact.
"""
from __future__ import annotations

import pytest
import torch

from spikemllm import IFCoder
from spikemllm.quant import QuantSpec, quantize, to_units

neuron = pytest.importorskip("spikingjelly.activation_based.neuron")


def sj_train(node, first: torch.Tensor, T: int) -> torch.Tensor:
    node.reset()
    out = []
    zero = torch.zeros_like(first)
    for t in range(T):
        out.append(node(first if t == 0 else zero))
    node.reset()
    return torch.stack(out)


def inputs(qmax: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(qmax)
    ties = torch.arange(-qmax - 1, qmax + 2, dtype=torch.float32) + 0.5
    below = torch.nextafter(ties, torch.zeros_like(ties))
    rnd = torch.randn(200, generator=g) * qmax
    big = torch.tensor([0.0, 1e9, -1e9, qmax + 40.0, 2 ** -30])
    return torch.cat([ties, below, rnd, big]).to(torch.float32)


@pytest.mark.parametrize("bits", [2, 3, 4, 5])
def test_unsigned_if_matches_spikingjelly_ifnode(bits):
    coder = IFCoder(bits, signed=False)
    T = coder.timesteps
    node = neuron.IFNode(v_threshold=1.0, v_reset=None, step_mode="s")
    u = inputs(T)
    ours = coder.simulate(u)
    theirs = sj_train(node, u.double() + 0.5, T)
    assert theirs.dtype == torch.float64
    assert torch.equal(ours, theirs.to(torch.int8))
    # and both carry the quantized value
    assert torch.equal(ours.sum(0).to(torch.int64), torch.clamp((u.double() + 0.5).floor(), 0, T).to(torch.int64))


def test_unsigned_if_matches_spikingjelly_on_quantized_activations():
    coder = IFCoder(4, signed=False)
    spec = QuantSpec(bits=4, symmetric=False, granularity="per-token", clip_ratio=0.8)
    x = torch.randn(8, 32, generator=torch.Generator().manual_seed(0)) * 2
    r = quantize(x, spec)
    u = to_units(x, r.scale, r.zero)
    node = neuron.IFNode(v_threshold=1.0, v_reset=None, step_mode="s")
    theirs = sj_train(node, u.double() + 0.5, coder.timesteps).to(torch.int8)
    assert torch.equal(theirs, coder.simulate(u))
    assert torch.equal(theirs, coder.encode(r.q))


@pytest.mark.parametrize("bits", [2, 3, 4, 5])
def test_signed_if_matches_spikingjelly_ternary_ifnode(bits):
    if not hasattr(neuron, "TernaryIFNode"):
        pytest.skip("this SpikingJelly has no ternary IF neuron")
    coder = IFCoder(bits)
    T = coder.timesteps
    node = neuron.TernaryIFNode(v_threshold=1.0, v_reset=None, step_mode="s")
    u = inputs(T)
    ours = coder.simulate(u)
    u64 = u.double()
    theirs = sj_train(node, u64 + 0.5 * torch.sign(u64), T)
    assert set(theirs.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert torch.equal(ours, theirs.to(torch.int8))
