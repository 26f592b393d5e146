"""Activation scales per (token, group of input features): still integer-exact, and finer than per token."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spikemllm import SpikeConfig, SpikeLinear
from spikemllm.nn import vision_mask
from spikemllm.quant import QuantSpec, round_half_away

from group_reference import cascade_sum  # tests/nn, on sys.path under pytest


def _reference(lin: torch.nn.Linear, x: torch.Tensor, qmax: int, group: int, wspec: QuantSpec) -> torch.Tensor:
    """Independent fake-quant: per-(token, group) symmetric codes, RTN weights, float matmul."""
    n, k = x.shape
    xg = x.reshape(n, k // group, group)
    s = xg.abs().amax(-1, keepdim=True) / qmax
    s = torch.where(s > 0, s, torch.ones_like(s))
    xd = (round_half_away(xg / s).clamp(-qmax, qmax) * s).reshape(n, k)
    w = lin.weight.detach()
    ws = w.abs().amax(-1, keepdim=True) / wspec.qmax
    wd = round_half_away(w / ws).clamp(-wspec.qmax, wspec.qmax) * ws
    return F.linear(xd, wd, lin.bias)


@pytest.mark.parametrize("coder,t,signed", [("tc-lif", 3, True), ("tc-lif", 4, True), ("if", 7, True),
                                            ("if", 5, False)])
def test_faithful_equals_fused_with_act_groups(coder, t, signed):
    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 24)
    m = SpikeLinear.from_linear(lin, coder=coder, t_text=t, t_vision=t - 1, signed=signed, act_group_size=16)
    x = torch.randn(3, 5, 64) * torch.linspace(0.1, 5, 64)  # groups of very different ranges
    mask = torch.zeros(3, 5, dtype=torch.bool)
    mask[:, :2] = True
    with vision_mask(mask):
        m.mode = "fused"
        a = m(x)
        m.mode = "faithful"
        b = m(x)
        m.mode = "fakequant"
        c = m(x)
    assert torch.equal(a, b)
    torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-5)


def test_matches_independent_reference_and_beats_per_token():
    torch.manual_seed(1)
    lin = torch.nn.Linear(128, 32)
    x = torch.randn(40, 128) * torch.linspace(0.05, 8, 128)
    wspec = QuantSpec(bits=8, granularity="per-channel")
    grouped = SpikeLinear.from_linear(lin, coder="tc-lif", t_text=3, weight_spec=wspec, act_group_size=32)
    per_token = SpikeLinear.from_linear(lin, coder="tc-lif", t_text=3, weight_spec=wspec)
    torch.testing.assert_close(grouped(x), _reference(lin, x, 7, 32, wspec), rtol=1e-5, atol=1e-5)
    fp = lin(x)
    err_g = (grouped(x) - fp).norm()
    err_t = (per_token(x) - fp).norm()
    assert err_g < 0.8 * err_t  # the point of per-group scales: outlier groups no longer crush the others


def test_per_group_weights_need_the_same_group():
    lin = torch.nn.Linear(64, 8)
    with pytest.raises(ValueError, match="act_group_size"):
        SpikeLinear.from_linear(lin, weight_spec=QuantSpec(bits=4, granularity="per-group", group_size=32),
                                act_group_size=16)
    with pytest.raises(ValueError, match="act_group_size"):
        SpikeLinear.from_linear(lin, act_group_size=24)  # does not divide 64
    m = SpikeLinear.from_linear(lin, weight_spec=QuantSpec(bits=4, granularity="per-group", group_size=16),
                                act_group_size=16, coder="if", t_text=7)
    x = torch.randn(4, 64)
    m.mode = "faithful"
    a = m(x)
    m.mode = "fused"
    assert torch.equal(a, m(x))


def test_config_field_validated_and_round_trips():
    c = SpikeConfig(act_group_size=32)
    assert SpikeConfig.from_json(c.to_json()) == c
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="act_group_size"):
            SpikeConfig(act_group_size=bad)
    with pytest.raises(ValueError, match="act_group_size"):
        SpikeConfig(weight_granularity="per-group", group_size=64, act_group_size=32)


def _group_partials(m: SpikeLinear, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Independent integer partials ``[G, N, out]`` (float64, exact) and scales ``[G, N, 1]`` of a signed layer."""
    from spikemllm.quant import quantize

    n, g = x.shape[0], m.in_features // m.act_group_size
    qz = quantize(x.reshape(n, g, -1), m.act_spec, qmax=m.coder.qmax)
    q = qz.q.reshape(n, g, -1).double().transpose(0, 1)  # [G, N, group]
    w = m.qweight.double().reshape(m.out_features, g, -1).permute(1, 2, 0)  # [G, group, out]
    return q @ w, qz.scale.transpose(0, 1)


@pytest.mark.parametrize("in_features", [64, 512])  # G = 4 (sequential sum), G = 32 (cascaded sum)
def test_group_outputs_follow_the_stated_float_arithmetic(in_features):
    # y = sum_g(float32(acc_g) * s_g, the cascade order) * w + b: the arithmetic every backend must keep, bit for
    # bit. Also guards the in-place int32 -> float32 conversion and the reused scratch buffers: an earlier
    # output must survive the next call.
    torch.manual_seed(0)
    m = SpikeLinear.from_linear(torch.nn.Linear(in_features, 40), coder="tc-lif", t_text=4, act_group_size=16)
    assert m.backend_in_use() == "int"
    x1 = torch.randn(7, in_features) * torch.linspace(0.1, 4, in_features)
    x2 = torch.randn(7, in_features)
    with torch.inference_mode():
        for mode in ("fused", "faithful"):
            m.mode = mode
            y1 = m(x1)
            kept = y1.clone()
            y2 = m(x2)
            for x, y in ((x1, y1), (x2, y2)):
                acc, s = _group_partials(m, x)
                ref = cascade_sum(acc.float() * s) * m.wscale.t() + m.bias
                assert torch.equal(y, ref), mode
            assert torch.equal(y1, kept), mode


def test_weight_groups_keep_float64_outputs_for_float64_inputs():
    # per-token activations with per-group weights: the per-token scale of a float64 input is float64 and the
    # rescale promotes to it (the in-place rescale must not round it back to float32).
    torch.manual_seed(1)
    m = SpikeLinear.from_linear(torch.nn.Linear(64, 8), coder="if", t_text=7,
                                weight_spec=QuantSpec(bits=4, granularity="per-group", group_size=16))
    x = torch.randn(5, 64, dtype=torch.float64)
    from spikemllm.quant import quantize

    qz = quantize(x, m.act_spec, qmax=m.coder.qmax)
    acc = qz.q.reshape(5, 4, 16).transpose(0, 1) @ m.qweight.double().reshape(8, 4, 16).permute(1, 2, 0)
    ref = (acc.float() * m.wscale.t().unsqueeze(1)).sum(0) * qz.scale + m.bias  # float32 sum, float64 rescale
    assert qz.scale.dtype == torch.float64
    with torch.inference_mode():
        y = m(x)
        assert y.dtype == torch.float64 and torch.equal(y, ref)
        m.backend = "float"
        assert torch.equal(y, m(x))


def test_groups_run_in_and_out_of_inference_mode():
    # the group partials live in reused scratch buffers: one made under inference_mode (an inference tensor)
    # must not be updated in place by a later call outside it (a RuntimeError before).
    torch.manual_seed(2)
    m = SpikeLinear.from_linear(torch.nn.Linear(32, 8), coder="tc-lif", t_text=4, act_group_size=16)
    x = torch.randn(3, 32)
    with torch.inference_mode():
        a = m(x)
    with torch.no_grad():
        b = m(x)
    with torch.inference_mode():
        c = m(x)
    assert torch.equal(a, b) and torch.equal(a, c)
