"""Activation scales per (token, group of input features): still integer-exact, and finer than per token."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spikemllm import SpikeConfig, SpikeLinear
from spikemllm.nn import vision_mask
from spikemllm.quant import QuantSpec, round_half_away


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
