"""GPTQ: never worse than RTN on layers with planted outlier input columns; output shaped like quantize()."""
from __future__ import annotations

import pytest
import torch

from spikemllm.methods.gptq import gptq_quantize
from spikemllm.quant import QuantSpec, quantize


def _layer(seed: int, n: int = 128, out: int = 48, tokens: int = 1024):
    g = torch.Generator().manual_seed(seed)
    mix = torch.eye(n) + 0.3 * torch.randn(n, n, generator=g)
    x = torch.randn(tokens, n, generator=g) @ mix
    cols = torch.randperm(n, generator=g)[:4]
    x[:, cols] *= 25.0                                   # planted outlier columns
    w = torch.randn(out, n, generator=g)
    return x, w


def _err(x, w, wq):
    return float(((x @ (w - wq).T) ** 2).sum())


SPECS = [QuantSpec(4, True, "per-channel"), QuantSpec(4, True, "per-group", 32), QuantSpec(3, True, "per-group", 64),
         QuantSpec(8, True, "per-channel")]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"w{s.bits}-{s.granularity}")
@pytest.mark.parametrize("act_order", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_gptq_error_not_above_rtn(spec, act_order, seed):
    x, w = _layer(seed)
    h = x.T @ x / x.shape[0]
    rtn = quantize(w, spec).dequantize().reshape(w.shape)
    g = gptq_quantize(w, h, spec, act_order=act_order, blocksize=32).dequantize().reshape(w.shape)
    assert _err(x, w, g) <= _err(x, w, rtn)


@pytest.mark.parametrize("spec", SPECS[:3], ids=lambda s: f"w{s.bits}-{s.granularity}")
@pytest.mark.parametrize("act_order", [False, True])
def test_output_layout_matches_quantize(spec, act_order):
    x, w = _layer(2)
    g = gptq_quantize(w, x.T @ x, spec, act_order=act_order)
    r = quantize(w, spec)
    assert g.q.shape == r.q.shape and g.scale.shape == r.scale.shape and g.zero is None
    assert torch.equal(g.q, g.q.round()) and int(g.q.abs().max()) <= spec.qmax
    if act_order or spec.granularity == "per-channel":   # static scales: exactly RTN's
        assert torch.equal(g.scale, r.scale)


def test_identity_hessian_gives_rtn_codes():
    """With uncorrelated unit inputs nothing can be compensated: GPTQ reduces to round-to-nearest."""
    w = torch.randn(16, 64)
    spec = QuantSpec(4, True, "per-channel")
    g = gptq_quantize(w, torch.eye(64), spec, percdamp=0.0)
    assert torch.equal(g.q, quantize(w, spec).q)


def test_dead_inputs_and_shape_errors():
    x, w = _layer(3, n=64)
    x[:, 7] = 0.0
    g = gptq_quantize(w, x.T @ x, QuantSpec(4, True, "per-channel"))
    assert torch.all(g.q[:, 7] == 0)
    with pytest.raises(AssertionError, match="Hessian"):
        gptq_quantize(w, torch.eye(8), QuantSpec(4, True, "per-channel"))
    with pytest.raises(ValueError, match="group_size"):
        gptq_quantize(w, x.T @ x, QuantSpec(4, True, "per-group", 48))
