"""Spike coders: round trips, spike alphabets, simulate == encode(quantize(x)), per-element timesteps."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spikemllm import IFCoder, TCLIFCoder
from spikemllm.coding import make_coder
from spikemllm.quant import GRANULARITIES, QuantSpec, quantize, round_half_away, to_units

DTYPES = [torch.float32, torch.float16, torch.bfloat16]

# (coder, matching activation quantizer)
def cases():
    out = []
    for b in (2, 3, 4, 5):
        out.append((IFCoder(b), QuantSpec(bits=b, symmetric=True)))
        out.append((IFCoder(b, signed=False), QuantSpec(bits=b, symmetric=False)))
        out.append((TCLIFCoder(b), QuantSpec(bits=b, symmetric=True)))
    out.append((TCLIFCoder(8), QuantSpec(bits=8, symmetric=True)))
    return out


CASES = cases()
CASE_IDS = [f"{type(c).__name__}({c.bits},{'s' if c.signed else 'u'})" for c, _ in CASES]


def all_codes(coder) -> torch.Tensor:
    lo = -coder.qmax if coder.signed else 0
    return torch.arange(lo, coder.qmax + 1, dtype=torch.int64)


def ref_train(coder, q: list[int], t: list[int], t_max: int) -> torch.Tensor:
    """Independent reference: the spike train of each code, written element by element."""
    out = torch.zeros(t_max, len(q), dtype=torch.int8)
    for i, (v, ti) in enumerate(zip(q, t)):
        sg = (v > 0) - (v < 0)
        start = t_max - ti
        if isinstance(coder, IFCoder):
            for k in range(abs(v)):
                out[start + k, i] = sg
        else:
            for step in range(t_max):
                out[step, i] = sg * ((abs(v) >> (t_max - 1 - step)) & 1)
    return out


# --- encode / decode -------------------------------------------------------------------------------------
@pytest.mark.parametrize("coder", [c for c, _ in CASES], ids=CASE_IDS)
def test_every_code_round_trips(coder):
    q = all_codes(coder)
    s = coder.encode(q)
    assert s.dtype == torch.int8 and s.shape == (coder.timesteps, q.numel())
    allowed = {-1, 0, 1} if coder.signed else {0, 1}
    assert set(s.unique().tolist()) <= allowed
    assert torch.equal(coder.decode(s), q)
    assert coder.decode(s).dtype == torch.int64
    assert torch.equal(s, ref_train(coder, q.tolist(), [coder.timesteps] * q.numel(), coder.timesteps))
    # float codes (what quantize returns) encode the same
    assert torch.equal(coder.encode(q.float()), s)
    assert torch.equal(coder.encode(q.double()), s)


@pytest.mark.parametrize("coder", [IFCoder(4), TCLIFCoder(5)], ids=["if", "tc-lif"])
def test_shapes_keep_the_code_shape(coder):
    q = torch.randint(-coder.qmax, coder.qmax + 1, (2, 3, 5))
    s = coder.encode(q)
    assert s.shape == (coder.timesteps, 2, 3, 5)
    assert torch.equal(coder.decode(s), q)


def test_decode_weights():
    c = TCLIFCoder(5)
    assert c.step_weights() == [8, 4, 2, 1]
    eye = torch.eye(4, dtype=torch.int8)  # spike at step t only
    assert c.decode(eye).tolist() == [8, 4, 2, 1]
    assert c.decode(-eye).tolist() == [-8, -4, -2, -1]
    assert IFCoder(4).decode(torch.eye(7, dtype=torch.int8)).tolist() == [1] * 7


def test_spike_counts():
    # IF: |q| spikes of one sign; TC-LIF: popcount(|q|) spikes of one sign
    for coder in (IFCoder(5), IFCoder(5, signed=False), TCLIFCoder(6)):
        q = all_codes(coder)
        s = coder.encode(q)
        n = (s != 0).sum(0)
        expect = q.abs() if isinstance(coder, IFCoder) else torch.tensor([bin(abs(v)).count("1") for v in q.tolist()])
        assert torch.equal(n, expect)
        assert bool(((s * torch.sign(q)) >= 0).all()), "one polarity per element"


@pytest.mark.parametrize("coder", [c for c, _ in CASES], ids=CASE_IDS)
def test_out_of_range_and_non_integer_codes_raise(coder):
    with pytest.raises(ValueError, match="out of range"):
        coder.encode(torch.tensor([coder.qmax + 1]))
    with pytest.raises(ValueError, match="out of range"):
        coder.encode(torch.tensor([-coder.qmax - 1 if coder.signed else -1]))
    with pytest.raises(ValueError, match="integers"):
        coder.encode(torch.tensor([0.5]))
    with pytest.raises(ValueError, match="NaN or Inf"):
        coder.encode(torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="NaN or Inf"):
        coder.encode(torch.tensor([float("inf")]))


def test_tclif_excludes_the_most_negative_code():
    with pytest.raises(ValueError, match="out of range"):
        TCLIFCoder(4).encode(torch.tensor([-8]))


# --- simulate == encode(quantize(x)) ---------------------------------------------------------------------
def check_contract(coder, spec: QuantSpec, x: torch.Tensor) -> None:
    r = quantize(x, spec)
    xg = x if spec.granularity != "per-group" else x.reshape(*x.shape[:-1], -1, spec.group_size)
    u = to_units(xg, r.scale, r.zero)
    sim = coder.simulate(u)
    enc = coder.encode(r.q)
    assert sim.dtype == torch.int8 and sim.shape == enc.shape
    assert torch.equal(sim, enc)
    assert torch.equal(coder.decode(sim), r.q.to(torch.int64))


@pytest.mark.parametrize("coder,spec", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_simulate_matches_quantize_random(coder, spec, dtype, granularity):
    g = torch.Generator().manual_seed(coder.bits)
    x = (torch.randn(4, 16, generator=g) * 3).to(dtype)
    s = QuantSpec(bits=spec.bits, symmetric=spec.symmetric, granularity=granularity, group_size=4)
    check_contract(coder, s, x)
    check_contract(coder, QuantSpec(**{**s.to_dict(), "clip_ratio": 0.6}), x)  # clipped inputs saturate


@pytest.mark.parametrize("coder,spec", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_simulate_matches_quantize_on_ties(coder, spec, dtype):
    # scale = 2**-3 exactly: symmetric top = qmax/8; asymmetric lo = -m/8, hi = (qmax - m)/8
    qm = spec.qmax
    ks = torch.arange(-qm, qm, dtype=torch.float64) + 0.5
    if spec.symmetric:
        ends = [qm / 8, -qm / 8]
    else:
        m = qm // 3
        ends = [-m / 8, (qm - m) / 8]
        ks = ks[(ks > -m) & (ks < qm - m)]
    x = torch.tensor(ends + (ks / 8).tolist(), dtype=torch.float64).to(dtype).unsqueeze(0)
    assert torch.equal(x.double()[0, 2:], ks / 8), "ties must be exact in the input dtype"
    r = quantize(x, QuantSpec(bits=spec.bits, symmetric=spec.symmetric, granularity="per-tensor"))
    assert r.scale.item() == 0.125
    check_contract(coder, QuantSpec(bits=spec.bits, symmetric=spec.symmetric, granularity="per-tensor"), x)
    # and the ties really went away from zero
    u = to_units(x, r.scale, r.zero)[0, 2:]
    assert torch.equal(r.q[0, 2:], (u.abs() + 0.5).floor() * torch.sign(u))


@pytest.mark.parametrize("coder", [c for c, _ in CASES], ids=CASE_IDS)
def test_simulate_any_input(coder):
    """simulate(u) = clamp(round_half_away(u)) as a train, for arbitrary u (ties, near-ties, huge, negative)."""
    qm = coder.qmax
    b = float(torch.nextafter(torch.tensor(0.5), torch.tensor(0.0)))
    vals = [0.0, -0.0, b, -b, 0.5, -0.5, 1.5 - 2 ** -20, 1.5, qm - 0.5, qm + 0.4999, qm + 0.5, 1e30, -1e30,
            -(qm + 3.0), 2 ** -140]
    vals += [k + 0.5 for k in range(-qm - 1, qm + 1)]
    u = torch.tensor(vals, dtype=torch.float32)
    lo = -qm if coder.signed else 0
    q = round_half_away(u).clamp(lo, qm)
    assert torch.equal(coder.simulate(u), coder.encode(q))
    assert torch.equal(coder.simulate(u.double()), coder.encode(q))


finite32 = st.floats(-2.0 ** 60, 2.0 ** 60, width=32)


@settings(max_examples=150, deadline=None)
@given(vals=st.lists(finite32, min_size=1, max_size=24), case=st.sampled_from(range(len(CASES))),
       dtype=st.sampled_from(DTYPES), clip=st.sampled_from([1.0, 0.7]),
       granularity=st.sampled_from(["per-tensor", "per-token"]))
def test_hypothesis_simulate_matches_quantize(vals, case, dtype, clip, granularity):
    coder, spec = CASES[case]
    x = torch.tensor(vals, dtype=torch.float32).to(dtype).unsqueeze(0)
    if not bool(torch.isfinite(x).all()):
        return
    check_contract(coder, QuantSpec(bits=spec.bits, symmetric=spec.symmetric, granularity=granularity,
                                    clip_ratio=clip), x)


@settings(max_examples=150, deadline=None)
@given(ks=st.lists(st.integers(-40, 40), min_size=1, max_size=16), e=st.integers(-6, 6),
       case=st.sampled_from(range(len(CASES))), dtype=st.sampled_from(DTYPES))
def test_hypothesis_ties(ks, e, case, dtype):
    """x = (k + 1/2) * 2**e with a power-of-two scale: every input is an exact tie, or clipped (clip 1/2)."""
    coder, spec = CASES[case]
    qm = spec.qmax
    step = 2.0 ** e
    ends = [2 * qm * step, -2 * qm * step] if spec.symmetric else [0.0, 2 * qm * step]
    ks = [k for k in ks if abs(k + 0.5) < 2 * qm and (spec.symmetric or k >= 0)]  # the ends set the scale
    x = torch.tensor(ends + [(k + 0.5) * step for k in ks], dtype=torch.float64).to(dtype).unsqueeze(0)
    s = QuantSpec(bits=spec.bits, symmetric=spec.symmetric, granularity="per-tensor", clip_ratio=0.5)
    assert quantize(x, s).scale.item() == step
    check_contract(coder, s, x)


def test_simulate_rejects_nan_inf():
    for coder in (IFCoder(4), IFCoder(4, signed=False), TCLIFCoder(4)):
        for bad in (float("nan"), float("inf"), float("-inf")):
            with pytest.raises(ValueError, match="NaN or Inf"):
                coder.simulate(torch.tensor([1.0, bad]))


# --- per-element timesteps -------------------------------------------------------------------------------
@pytest.mark.parametrize("coder", [IFCoder(4), IFCoder(4, signed=False), IFCoder(timesteps=9), TCLIFCoder(5),
                                   TCLIFCoder(8)], ids=["if4", "if4u", "ifT9", "tclif5", "tclif8"])
def test_per_element_timesteps(coder):
    g = torch.Generator().manual_seed(coder.timesteps)
    T = coder.timesteps
    t = torch.randint(1, T + 1, (6, 1), generator=g)
    t[0, 0], t[1, 0], t[2, 0] = 1, 3, T  # trains have max(t) steps
    qm = coder.qmax_for(t)
    qm = qm if isinstance(qm, torch.Tensor) else torch.tensor(qm)
    lo = -qm if coder.signed else torch.zeros_like(qm)
    # every representable code of each element's range
    q = torch.minimum(torch.maximum(torch.randint(-200, 201, (6, 10), generator=g), lo), qm)
    q[:, 0], q[:, 1] = qm[:, 0], lo[:, 0]
    s = coder.encode(q, t)
    assert s.shape == (T, 6, 10)
    for i in range(6):
        ti = int(t[i])
        assert not bool(s[: T - ti, i].any()), f"an element with T={ti} spiked before its last {ti} steps"
        assert int((s[:, i] != 0).any(-1).sum()) <= ti
    assert torch.equal(coder.decode(s), q)
    ref = ref_train(coder, q.flatten().tolist(), t.expand_as(q).flatten().tolist(), T).view(T, 6, 10)
    assert torch.equal(s, ref)
    # simulate with the same per-element T, from real inputs that need clipping to each element's range
    u = (torch.randn(6, 10, generator=g) * float(qm.max())).float()
    u[:, 2] = qm[:, 0] + 0.5
    u[:, 3] = -(qm[:, 0] + 7.0)
    qu = torch.minimum(torch.maximum(round_half_away(u), lo.float()), qm.float())
    assert torch.equal(coder.simulate(u, t), coder.encode(qu, t))
    # planes in q's float dtype, one step at a time, equal encode
    for dt in (torch.float32, torch.float64):
        pl = torch.stack(list(coder.planes(q.to(dt), t, T)))
        assert pl.dtype == dt and torch.equal(pl.to(torch.int8), s)


def test_token_with_three_steps_never_spikes_in_more_than_three():
    for coder in (IFCoder(timesteps=15), IFCoder(timesteps=15, signed=False), TCLIFCoder(timesteps=6)):
        t = torch.tensor([[3], [coder.timesteps]])
        u = torch.full((2, 8), 1e6)
        u[:, ::2] *= -1
        s = coder.simulate(u, t)
        assert int(s[:, 0].ne(0).any(-1).sum()) <= 3
        assert not bool(s[: coder.timesteps - 3, 0].any())
        assert int(coder.decode(s)[0].abs().max()) == coder.qmax_for(3)


@pytest.mark.parametrize("coder", [IFCoder(4), TCLIFCoder(4)], ids=["if", "tc-lif"])
def test_planes_equal_encode(coder):
    q = all_codes(coder).float()
    T = coder.timesteps
    for t in (T, 1, 2):
        qq = q.clamp(-coder.qmax_for(t), coder.qmax_for(t))
        # a scalar T: trains of T steps; inside a wider window (t_max = T), silent first steps
        assert torch.equal(torch.stack(list(coder.planes(qq, t, t))).to(torch.int8), coder.encode(qq, t))
        tt = torch.full_like(qq, t, dtype=torch.int64)
        tt[0] = T
        wide = coder.encode(qq, tt)
        assert wide.shape[0] == T
        assert torch.equal(torch.stack(list(coder.planes(qq, t, T))).to(torch.int8)[:, 1:], wide[:, 1:])


def test_trains_have_the_largest_requested_timesteps():
    for coder in (IFCoder(4), TCLIFCoder(5)):
        q = torch.tensor([1, -1, 0])
        assert coder.encode(q).shape[0] == coder.timesteps
        assert coder.encode(q, 2).shape[0] == 2
        assert coder.encode(q, torch.tensor([2, 3, 1])).shape[0] == 3
        assert coder.simulate(q.float(), torch.tensor([2, 3, 1])).shape[0] == 3
        assert coder.decode(coder.encode(q, torch.tensor([2, 3, 1]))).tolist() == [1, -1, 0]


def test_codes_out_of_range_for_their_timesteps_raise():
    for coder in (IFCoder(4), TCLIFCoder(5)):
        t = torch.tensor([[2], [coder.timesteps]])
        q = torch.zeros(2, 3)
        q[0, 1] = coder.qmax_for(2) + 1
        with pytest.raises(ValueError, match="out of range"):
            coder.encode(q, t)
        q[0, 1] = coder.qmax_for(2)
        coder.encode(q, t)


@pytest.mark.parametrize("bad", [0, -1, 8, [[0], [3]], [[8], [1]]])
def test_bad_per_element_timesteps(bad):
    with pytest.raises(ValueError, match=r"timesteps.*1\.\.7"):
        IFCoder(4).encode(torch.zeros(2, 3), torch.tensor(bad))
    with pytest.raises(ValueError, match=r"timesteps.*1\.\.7"):
        IFCoder(4).simulate(torch.zeros(2, 3), torch.tensor(bad))


# --- construction ----------------------------------------------------------------------------------------
def test_make_coder_and_timesteps_constructor():
    assert isinstance(make_coder("if", bits=4), IFCoder) and make_coder("if", bits=4).timesteps == 7
    assert make_coder("if", timesteps=15, signed=False).qmax == 15
    assert make_coder("tc-lif", timesteps=3).qmax == 7
    assert IFCoder(timesteps=5).qmax == 5 and IFCoder(timesteps=5).bits == 4
    assert TCLIFCoder(timesteps=3).bits == 4
    assert list(IFCoder(4).parameters()) == [] and list(TCLIFCoder(4).buffers()) == []


@pytest.mark.parametrize("kwargs", [dict(timesteps=0), dict(bits=1), dict(timesteps=-2)])
def test_bad_coder_config(kwargs):
    for cls in (IFCoder, TCLIFCoder):
        with pytest.raises(ValueError, match=r"(bits|timesteps)=.*allowed values"):
            cls(**kwargs)
