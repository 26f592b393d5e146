"""The one bits <-> levels <-> timesteps map (spikemllm.levels.level_spec) and the coders that read it."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import spikemllm
from spikemllm.coding import make_coder
from spikemllm.levels import level_spec, qmax_for, steps_for_bits
from spikemllm.quant import QuantSpec


# --- the paper's numbers ---------------------------------------------------------------------------------
def test_paper_numbers_on_the_public_coders():
    assert spikemllm.TCLIFCoder(4).timesteps == 3
    assert spikemllm.TCLIFCoder(5).timesteps == 4
    assert spikemllm.IFCoder(4).timesteps == 7
    assert spikemllm.IFCoder(4, signed=False).timesteps == 15


@pytest.mark.parametrize("coding,signed,bits,T,qmin,qmax", [
    ("tc-lif", True, 4, 3, -7, 7),
    ("tc-lif", True, 5, 4, -15, 15),
    ("tc-lif", True, 2, 1, -1, 1),
    ("if", True, 4, 7, -7, 7),
    ("if", True, 2, 1, -1, 1),
    ("if", False, 4, 15, 0, 15),
    ("if", False, 2, 3, 0, 3),
    ("if", False, 8, 255, 0, 255),
])
def test_level_spec_table(coding, signed, bits, T, qmin, qmax):
    s = level_spec(coding, bits=bits, signed=signed)
    assert (s.bits, s.timesteps, s.qmin, s.qmax) == (bits, T, qmin, qmax)
    assert s.levels == qmax - qmin + 1
    assert steps_for_bits(coding, bits, signed) == T
    assert qmax_for(coding, T, signed) == qmax


def test_levels_follow_the_paper():
    # unsigned IF: L = 2**b levels; signed codes drop -2**(b-1): L - 1 levels, for IF and TC-LIF alike
    for b in range(2, 9):
        assert level_spec("if", bits=b, signed=False).levels == 2 ** b
        assert level_spec("if", bits=b).levels == 2 ** b - 1
        assert level_spec("tc-lif", bits=b).levels == 2 ** b - 1


# --- the two directions agree --------------------------------------------------------------------------
@pytest.mark.parametrize("coding,signed", [("if", True), ("if", False), ("tc-lif", True)])
def test_bits_to_timesteps_and_back(coding, signed):
    for b in range(2, 17):
        fwd = level_spec(coding, bits=b, signed=signed)
        back = level_spec(coding, timesteps=fwd.timesteps, signed=signed)
        assert back == fwd


@settings(max_examples=200, deadline=None)
@given(T=st.integers(1, 4000), signed=st.booleans())
def test_if_timesteps_give_smallest_bits_that_hold_T(T, signed):
    s = level_spec("if", timesteps=T, signed=signed)
    assert s.timesteps == T and s.qmax == T and s.qmin == (-T if signed else 0)
    # bits: the smallest width (>= 2) whose quantizer range holds T
    assert QuantSpec(bits=s.bits, symmetric=signed).qmax >= T if s.bits <= 16 else True
    if s.bits > 2:
        assert level_spec("if", bits=s.bits - 1, signed=signed).qmax < T


@pytest.mark.parametrize("T", range(1, 16))
def test_tclif_timesteps_are_bits_minus_one(T):
    s = level_spec("tc-lif", timesteps=T)
    assert s.bits == T + 1 and s.qmax == 2 ** T - 1 and s.qmin == -(2 ** T - 1)


def test_coders_read_level_spec():
    for b in range(2, 9):
        assert spikemllm.IFCoder(b).qmax == level_spec("if", bits=b).qmax
        assert spikemllm.IFCoder(b, signed=False).timesteps == level_spec("if", bits=b, signed=False).timesteps
        assert spikemllm.TCLIFCoder(b).timesteps == level_spec("tc-lif", bits=b).timesteps
        assert spikemllm.TCLIFCoder(timesteps=b - 1).bits == b
        assert QuantSpec(bits=b).qmax == spikemllm.IFCoder(b).qmax == spikemllm.TCLIFCoder(b).qmax
        assert QuantSpec(bits=b, symmetric=False).qmax == spikemllm.IFCoder(b, signed=False).qmax


# --- errors name the field and the allowed values -----------------------------------------------------
@pytest.mark.parametrize("bits", [1, 0, -3, 17, 2.0, "4"])
def test_bad_bits(bits):
    for coding in ("if", "tc-lif"):
        with pytest.raises(ValueError, match=r"bits=.*allowed values"):
            level_spec(coding, bits=bits)
    with pytest.raises(ValueError, match=r"bits=.*allowed values"):
        QuantSpec(bits=bits)


@pytest.mark.parametrize("T", [0, -1, 1.5])
def test_bad_timesteps(T):
    for coding in ("if", "tc-lif"):
        with pytest.raises(ValueError, match=r"timesteps=.*allowed values: integers >= 1"):
            level_spec(coding, timesteps=T)


def test_tclif_timesteps_upper_bound():
    with pytest.raises(ValueError, match=r"timesteps=16.*allowed values: 1\.\.15"):
        level_spec("tc-lif", timesteps=16)


@pytest.mark.parametrize("name", ["lif", "IF", "", "tclif"])
def test_unknown_coder(name):
    with pytest.raises(ValueError, match=r"coding=.*allowed values: if, tc-lif"):
        level_spec(name, bits=4)
    with pytest.raises(ValueError, match=r"coder=.*allowed values: if, tc-lif"):
        make_coder(name, bits=4)


def test_unsigned_tclif_is_refused():
    with pytest.raises(ValueError, match=r"signed=False.*allowed"):
        level_spec("tc-lif", bits=4, signed=False)
    with pytest.raises(ValueError, match=r"signed=False.*allowed"):
        make_coder("tc-lif", bits=4, signed=False)


def test_exactly_one_of_bits_or_timesteps():
    with pytest.raises(ValueError, match="bits= or timesteps="):
        level_spec("if", bits=4, timesteps=7)
    with pytest.raises(ValueError, match="bits= or timesteps="):
        level_spec("if")
    with pytest.raises(ValueError, match="bits= or timesteps="):
        spikemllm.IFCoder()
