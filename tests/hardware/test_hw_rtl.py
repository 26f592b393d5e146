"""The Amaranth spike PE and tile equal the numpy reference exactly, with the cycle counts the design promises."""
import numpy as np
import pytest

pytest.importorskip("amaranth")

from amaranth.sim import Simulator  # noqa: E402

from spikemllm.hardware.rtl_pe import SpikePE, accumulator_bits  # noqa: E402
from spikemllm.hardware.rtl_sim import simulate_tile  # noqa: E402
from spikemllm.hardware.tile_reference import horner_reference, random_ternary_spikes  # noqa: E402


def test_pe_first_shift_add_by_hand():
    dut = SpikePE(weight_bits=4, lanes=2, max_timesteps=3, fan_in=4)
    seen = []

    async def bench(ctx):
        ctx.set(dut.valid, 1)
        # token: t0 chunk A: w=(3,-8), s=(+1,-1) -> 3+8 = 11 (load)
        ctx.set(dut.weights, [3, -8]); ctx.set(dut.spike_pos, 0b01); ctx.set(dut.spike_neg, 0b10)
        ctx.set(dut.first, 1)
        await ctx.tick(); seen.append(ctx.get(dut.acc))
        # t0 chunk B: w=(5,7), s=(0,+1) -> 11+7 = 18 (add)
        ctx.set(dut.first, 0); ctx.set(dut.weights, [5, 7]); ctx.set(dut.spike_pos, 0b10); ctx.set(dut.spike_neg, 0)
        await ctx.tick(); seen.append(ctx.get(dut.acc))
        # t1 chunk A: w=(3,-8), s=(-1,0) -> 2*18-3 = 33 (shift)
        ctx.set(dut.shift, 1); ctx.set(dut.weights, [3, -8]); ctx.set(dut.spike_pos, 0); ctx.set(dut.spike_neg, 0b01)
        await ctx.tick(); seen.append(ctx.get(dut.acc))
        # both spike bits set on a lane count as no spike; valid low holds the accumulator
        ctx.set(dut.shift, 0); ctx.set(dut.spike_pos, 0b11); ctx.set(dut.spike_neg, 0b01)
        await ctx.tick(); seen.append(ctx.get(dut.acc))  # 33 + (-8)
        ctx.set(dut.valid, 0)
        await ctx.tick(); seen.append(ctx.get(dut.acc))

    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [11, 18, 33, 25, 25]


def test_accumulator_width_bound():
    assert accumulator_bits(4, 1, 1) == 5  # -8 * -1 = +8 needs 5 signed bits
    assert accumulator_bits(4, 4, 16) == 12
    with pytest.raises(ValueError):
        accumulator_bits(1, 4, 4)


@pytest.mark.parametrize("seed,rows,lanes,chunks,weight_bits", [
    (0, 1, 1, 1, 2), (1, 3, 4, 1, 4), (2, 4, 2, 3, 4), (3, 2, 8, 2, 8), (4, 5, 3, 2, 3),
])
def test_tile_equals_reference_on_random_tiles(seed, rows, lanes, chunks, weight_bits):
    rng = np.random.default_rng(seed)
    cols = lanes * chunks
    half = 1 << (weight_bits - 1)
    W = rng.integers(-half, half, size=(rows, cols))
    Ts = rng.integers(1, 5, size=6)  # per-token timesteps
    spikes = [random_ternary_spikes(rng, int(T), cols, float(rng.uniform(0.05, 0.9))) for T in Ts]
    run = simulate_tile(W, spikes, lanes=lanes, weight_bits=weight_bits, max_timesteps=4)
    np.testing.assert_array_equal(run.y, horner_reference(W, spikes))
    assert run.load_cycles == chunks
    assert run.compute_cycles == run.issued_cycles + 1  # one cycle of output latency for the whole stream
    assert sum(Ts) <= run.issued_cycles <= sum(Ts) * chunks


def test_tile_extreme_values_do_not_overflow():
    # most negative weights times -1 spikes on every step: the largest positive sum the tile can see
    W = np.full((2, 6), -8)
    spikes = [-np.ones((4, 6), dtype=np.int8), np.ones((4, 6), dtype=np.int8), -np.ones((1, 6), dtype=np.int8)]
    run = simulate_tile(W, spikes, lanes=3, weight_bits=4, max_timesteps=4)
    np.testing.assert_array_equal(run.y, horner_reference(W, spikes))
    assert run.y[0, 0] == 15 * 6 * 8


def test_dense_schedule_costs_T_times_chunks():
    rng = np.random.default_rng(7)
    W = rng.integers(-8, 8, size=(3, 8))
    spikes = [np.zeros((3, 8), dtype=np.int8), random_ternary_spikes(rng, 2, 8, 0.5)]
    dense = simulate_tile(W, spikes, lanes=2, skip_zero_chunks=False)
    sparse = simulate_tile(W, spikes, lanes=2, skip_zero_chunks=True)
    np.testing.assert_array_equal(dense.y, sparse.y)
    assert dense.issued_cycles == (3 + 2) * 4
    assert sparse.issued_cycles < dense.issued_cycles


def test_integer_activations_as_bit_planes_give_W_times_x():
    # signed binary bit-planes (MSB first) of integers |x| <= 2^T - 1 reconstruct W @ x
    rng = np.random.default_rng(11)
    T, cols = 3, 4
    x = rng.integers(-(2**T - 1), 2**T, size=cols)
    planes = np.array([np.sign(x) * ((np.abs(x) >> (T - 1 - t)) & 1) for t in range(T)], dtype=np.int8)
    W = rng.integers(-8, 8, size=(4, cols))
    run = simulate_tile(W, [planes], lanes=4)
    np.testing.assert_array_equal(run.y[0], W @ x)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        simulate_tile(np.full((2, 4), 9), [np.zeros((1, 4), dtype=np.int8)], lanes=2, weight_bits=4)
    with pytest.raises(ValueError):
        simulate_tile(np.zeros((2, 4)), [np.full((1, 4), 2, dtype=np.int8)], lanes=2)
    with pytest.raises(ValueError):
        simulate_tile(np.zeros((2, 5)), [np.zeros((1, 5), dtype=np.int8)], lanes=2)
