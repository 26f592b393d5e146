"""The one rounding rule (round half away from zero), checked against exact rational arithmetic."""
from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spikemllm.quant import round_half_away

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


def ref_round(v: float) -> float:
    """Round half away from zero in exact arithmetic."""
    f = Fraction(v)
    n = math.floor(abs(f) + Fraction(1, 2))
    return float(n if f >= 0 else -n)


def below(v: float, dtype: torch.dtype) -> float:
    """The largest ``dtype`` value below ``v`` (toward zero)."""
    return float(torch.nextafter(torch.tensor(v, dtype=dtype), torch.tensor(0.0, dtype=dtype)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_ties_round_away_from_zero(dtype):
    ks = torch.arange(-60, 60, dtype=torch.float64)
    u = (ks + 0.5).to(dtype)  # exact in every dtype tested
    r = round_half_away(u)
    assert r.dtype == dtype
    expect = torch.where(ks >= 0, ks + 1, ks)  # k + 0.5 -> k + 1 for k >= 0; -(|k| - 0.5) -> k for k < 0
    assert torch.equal(r.double(), expect)


@pytest.mark.parametrize("dtype", DTYPES)
def test_named_values(dtype):
    vals = [0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 3.5, -3.5, 0.0, -0.0, 1.0, -7.0, 0.25, -0.75]
    r = round_half_away(torch.tensor(vals, dtype=dtype)).tolist()
    assert r == [1, -1, 2, -2, 3, -3, 4, -4, 0, 0, 1, -7, 0, -1]


@pytest.mark.parametrize("dtype", DTYPES)
def test_largest_float_below_one_half(dtype):
    b = below(0.5, dtype)
    assert 0.49 < b < 0.5
    r = round_half_away(torch.tensor([b, -b, below(1.5, dtype), -below(2.5, dtype)], dtype=dtype)).tolist()
    assert r == [0, 0, 1, -2]  # floor(|u| + 0.5) would round 0.49999997 up: the rule must not


def test_float32_0_49999997():
    u = torch.tensor([0.49999997, -0.49999997], dtype=torch.float32)
    assert float(u[0]) == below(0.5, torch.float32)
    assert round_half_away(u).tolist() == [0.0, 0.0]


def test_large_values_and_input_untouched():
    u = torch.tensor([8388607.5, -8388607.5, 2.0 ** 24 + 2, 1e30, -1e30], dtype=torch.float32)
    before = u.clone()
    r = round_half_away(u)
    assert torch.equal(u, before)  # the input is not modified in place
    assert r.tolist() == [8388608.0, -8388608.0, 2.0 ** 24 + 2, float(torch.tensor(1e30)), -float(torch.tensor(1e30))]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=40))
def test_matches_exact_rounding_float32(vals):
    r = round_half_away(torch.tensor(vals, dtype=torch.float32))
    assert r.tolist() == [ref_round(float(torch.tensor(v, dtype=torch.float32))) for v in vals]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=40))
def test_matches_exact_rounding_float64(vals):
    r = round_half_away(torch.tensor(vals, dtype=torch.float64))
    assert r.tolist() == [ref_round(v) for v in vals]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-70000, 70000, width=32), min_size=1, max_size=40),
       st.sampled_from([torch.float16, torch.bfloat16]))
def test_matches_exact_rounding_half_precision(vals, dtype):
    u = torch.tensor(vals, dtype=torch.float32).to(dtype)
    u = u[torch.isfinite(u)]
    r = round_half_away(u)
    assert r.dtype == dtype
    assert r.tolist() == [ref_round(v) for v in u.tolist()]
