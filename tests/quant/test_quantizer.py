"""Integer quantizers: codes in range, error bounds, granularities, clipping, dtypes, bad inputs."""
from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spikemllm.quant import GRANULARITIES, QuantSpec, dequantize, fake_quantize, quantize, to_units

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
GS = 8


def grouped(x: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    if spec.granularity != "per-group":
        return x
    return x.reshape(*x.shape[:-1], x.shape[-1] // spec.group_size, spec.group_size)


def reduce_dims(xg: torch.Tensor, spec: QuantSpec) -> tuple[int, ...]:
    return tuple(range(xg.dim())) if spec.granularity == "per-tensor" else (-1,)


def clip_range(xg: torch.Tensor, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """What each element's quantizer represents: [-c max|x|, c max|x|] or [c min(min, 0), c max(max, 0)]."""
    d = reduce_dims(xg, spec)
    if spec.symmetric:
        top = xg.abs().amax(dim=d, keepdim=True) * spec.clip_ratio
        return -top, top
    lo = xg.amin(dim=d, keepdim=True).clamp(max=0) * spec.clip_ratio
    hi = xg.amax(dim=d, keepdim=True).clamp(min=0) * spec.clip_ratio
    return lo, hi


def check_quantized(x: torch.Tensor, spec: QuantSpec) -> None:
    r = quantize(x, spec)
    xg = grouped(x.float(), spec)
    q, s = r.q, r.scale
    assert q.shape == xg.shape
    assert q.is_floating_point() and torch.equal(q, torch.round(q)), "codes must be integer-valued"
    assert int(q.min()) >= spec.qmin and int(q.max()) <= spec.qmax
    assert bool((s > 0).all()) and bool(torch.isfinite(s).all())
    if spec.symmetric:
        assert r.zero is None
    else:
        z = r.zero
        assert torch.equal(z, torch.round(z)) and int(z.min()) >= 0 and int(z.max()) <= spec.qmax
    # expected scale shapes
    if spec.granularity == "per-tensor":
        assert s.numel() == 1
    else:
        assert s.shape == (*xg.shape[:-1], 1)
    lo, hi = clip_range(xg, spec)
    deq = dequantize(q, s, r.zero)
    assert torch.equal(deq, r.dequantize())
    inside = (xg >= lo) & (xg <= hi)
    err = (deq - xg).abs()
    tol = s * (0.5 + (spec.qmax + 2) * 2.0 ** -22) + xg.abs() * 2.0 ** -22
    assert bool((err <= tol)[inside].all()), float((err - s / 2)[inside].max())
    # outside the clip range the code saturates
    sat_hi = torch.full_like(q, spec.qmax)
    sat_lo = torch.full_like(q, spec.qmin)
    assert torch.equal(q[xg > hi], sat_hi[xg > hi])
    assert torch.equal(q[xg < lo], sat_lo[xg < lo])


@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("clip", [1.0, 0.8, 0.5])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_every_granularity(granularity, symmetric, clip, bits):
    g = torch.Generator().manual_seed(bits * 100 + int(clip * 10))
    x = torch.randn(5, 4 * GS, generator=g) * torch.rand(5, 1, generator=g) * 3 + 0.3
    spec = QuantSpec(bits=bits, symmetric=symmetric, granularity=granularity, group_size=GS, clip_ratio=clip)
    check_quantized(x, spec)
    check_quantized(x.abs(), spec)    # one-signed data: the zero point sits at an end of the range
    check_quantized(-x.abs(), spec)


def test_scales_follow_the_granularity():
    x = torch.tensor([[1.0, -2.0, 0.5, 4.0], [0.1, 0.2, -0.3, 0.0]])
    r = quantize(x, QuantSpec(bits=4, granularity="per-tensor"))
    assert torch.allclose(r.scale, torch.tensor(4.0 / 7))
    r = quantize(x, QuantSpec(bits=4, granularity="per-token"))
    assert torch.allclose(r.scale, torch.tensor([[4.0 / 7], [0.3 / 7]]))
    assert torch.equal(quantize(x, QuantSpec(bits=4, granularity="per-channel")).scale, r.scale)
    r = quantize(x, QuantSpec(bits=4, granularity="per-group", group_size=2))
    assert torch.allclose(r.scale.squeeze(-1), torch.tensor([[2.0, 4.0], [0.2, 0.3]]) / 7)
    r = quantize(x, QuantSpec(bits=4, granularity="per-token", clip_ratio=0.5))
    assert torch.allclose(r.scale, torch.tensor([[2.0 / 7], [0.15 / 7]]))
    # exact scales (powers of two) make ties exact: clip 0.5 of max 14 is 7 -> scale 1
    r = quantize(torch.tensor([[7.0, -3.5, 2.5, 14.0, -0.5, 0.49999997]]), QuantSpec(bits=4, clip_ratio=0.5))
    assert r.scale.item() == 1.0
    assert r.q.tolist() == [[7, -4, 3, 7, -1, 0]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("symmetric", [True, False])
def test_ties_through_the_quantizer(dtype, symmetric):
    """u = x/scale lands exactly on k + 0.5 (scale a power of two): the code rounds away from zero."""
    spec = QuantSpec(bits=4, symmetric=symmetric, granularity="per-tensor")
    # symmetric: top = 7 * 0.25 -> scale 0.25; asymmetric: lo = -4*0.25, hi = 11*0.25 -> scale 0.25, zero 4
    ends = [1.75, -1.75] if symmetric else [2.75, -1.0]
    ties = [0.125, -0.125, 0.375, -0.375, 0.625, -0.625, 1.125, -0.875]
    b = float(torch.nextafter(torch.tensor(0.125, dtype=dtype), torch.tensor(0.0, dtype=dtype)))  # < half a step
    x = torch.tensor(ends + ties + [b, -b], dtype=dtype)
    r = quantize(x, spec)
    assert r.scale.item() == 0.25
    if symmetric:
        assert r.q.tolist() == [7, -7, 1, -1, 2, -2, 3, -3, 5, -4, 0, 0]
    else:
        assert r.zero.item() == 4
        # u = x/0.25 + 4: ties at 4.5, 3.5, 5.5, 2.5, 6.5, 1.5, 8.5, 0.5 -> away from zero
        assert r.q[:10].tolist() == [15, 0, 5, 4, 6, 3, 7, 2, 9, 1]
        # just below a tie: the rule applies to the neuron input u = x/scale + zero as computed in float32,
        # where 4 + 0.49999997 is already 4.5 (so float32 gives 5, fp16/bf16 give 4)
        u = to_units(x[10:], r.scale, r.zero)
        assert r.q[10:].tolist() == [5.0 if u[0] == 4.5 else 4.0, 4.0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("symmetric", [True, False])
def test_half_precision_inputs(dtype, granularity, symmetric):
    """fp16/bf16 inputs are widened exactly: the codes equal those of the float32 copy."""
    x = (torch.randn(3, 2 * GS, generator=torch.Generator().manual_seed(7)) * 5).to(dtype)
    spec = QuantSpec(bits=4, symmetric=symmetric, granularity=granularity, group_size=GS, clip_ratio=0.9)
    r, r32 = quantize(x, spec), quantize(x.float(), spec)
    assert torch.equal(r.q, r32.q) and torch.equal(r.scale, r32.scale)
    assert r.q.dtype == torch.float32 and r.scale.dtype == torch.float32
    check_quantized(x, spec)
    fq = fake_quantize(x, spec)
    assert fq.dtype == dtype and fq.shape == x.shape
    assert torch.equal(fq, r.dequantize().reshape(x.shape).to(dtype))


def test_float64_stays_float64():
    x = torch.randn(2, 16, dtype=torch.float64)
    r = quantize(x, QuantSpec(bits=8))
    assert r.q.dtype == torch.float64 and r.scale.dtype == torch.float64


def test_zero_rows_get_unit_scale():
    x = torch.zeros(2, 8)
    x[1] = torch.arange(8.0)
    for sym in (True, False):
        r = quantize(x, QuantSpec(bits=4, symmetric=sym))
        assert r.scale[0].item() == 1.0 and bool((r.q[0] == (0 if sym else r.zero[0])).all())
        assert torch.equal(r.dequantize()[0], torch.zeros(8))


def test_static_scale_clamps():
    spec = QuantSpec(bits=4)
    r = quantize(torch.tensor([[100.0, -100.0, 0.6, -2.5]]), spec, scale=torch.tensor([[0.5]]))
    assert r.scale.item() == 0.5 and r.q.tolist() == [[7, -7, 1, -5]]
    ru = quantize(torch.tensor([[100.0, -100.0, 0.6]]), QuantSpec(bits=4, symmetric=False),
                  scale=torch.tensor([[0.5]]), zero=torch.tensor([[3.0]]))
    assert ru.q.tolist() == [[15, 0, 4]]


def test_to_units_and_dequantize():
    x = torch.tensor([[1.0, -3.0]])
    s = torch.tensor([[0.5]])
    assert torch.equal(to_units(x, s), torch.tensor([[2.0, -6.0]]))
    assert torch.equal(to_units(x, s, torch.tensor([[8.0]])), torch.tensor([[10.0, 2.0]]))
    assert torch.equal(dequantize(torch.tensor([[10.0, 2.0]]), s, torch.tensor([[8.0]])), x)
    assert to_units(x.half(), s).dtype == torch.float32


# --- hypothesis: arbitrary finite data -----------------------------------------------------------------
finite32 = st.floats(-2.0 ** 100, 2.0 ** 100, width=32, allow_subnormal=False)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.lists(finite32, min_size=8, max_size=8), min_size=1, max_size=4),
       bits=st.integers(2, 8), symmetric=st.booleans(), granularity=st.sampled_from(GRANULARITIES),
       clip=st.sampled_from([1.0, 0.9, 0.5]), dtype=st.sampled_from(DTYPES))
def test_hypothesis_codes_in_range_and_error_bound(rows, bits, symmetric, granularity, clip, dtype):
    x = torch.tensor(rows, dtype=torch.float32).to(dtype)
    if not bool(torch.isfinite(x).all()):  # fp16 overflow: covered by the NaN/Inf tests
        return
    spec = QuantSpec(bits=bits, symmetric=symmetric, granularity=granularity, group_size=4, clip_ratio=clip)
    check_quantized(x, spec)


# --- errors ----------------------------------------------------------------------------------------------
def test_group_size_must_divide():
    spec = QuantSpec(bits=4, granularity="per-group", group_size=5)
    with pytest.raises(ValueError, match=r"group_size=5.*allowed values: a divisor of 16"):
        quantize(torch.randn(2, 16), spec)
    with pytest.raises(ValueError, match=r"group_size=5.*allowed values: a divisor of 16"):
        fake_quantize(torch.randn(2, 16), spec)


@pytest.mark.parametrize("kwargs,field", [
    (dict(granularity="per-row"), "granularity"),
    (dict(granularity="per-group", group_size=0), "group_size"),
    (dict(clip_ratio=0.0), "clip_ratio"),
    (dict(clip_ratio=1.5), "clip_ratio"),
    (dict(clip_ratio=float("nan")), "clip_ratio"),
    (dict(bits=1), "bits"),
])
def test_bad_spec(kwargs, field):
    with pytest.raises(ValueError, match=rf"{field}=.*allowed values"):
        QuantSpec(**kwargs)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_inf_raise(bad, granularity, symmetric, dtype):
    x = torch.randn(3, 2 * GS, generator=torch.Generator().manual_seed(3)).to(dtype)
    x[1, 5] = bad
    spec = QuantSpec(bits=4, symmetric=symmetric, granularity=granularity, group_size=GS)
    with pytest.raises(ValueError, match="NaN or Inf"):
        quantize(x, spec)
    with pytest.raises(ValueError, match="NaN or Inf"):
        fake_quantize(x, spec)
    with pytest.raises(ValueError, match="NaN or Inf"):  # static scale path
        quantize(x, QuantSpec(bits=4), scale=torch.ones(3, 1))


def test_spec_json_round_trip():
    spec = QuantSpec(bits=3, symmetric=False, granularity="per-group", group_size=32, clip_ratio=0.75)
    assert QuantSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert hash(spec) == hash(QuantSpec.from_dict(spec.to_dict()))
