"""The accelerator cycle model reproduces the RTL tile's cycle counts on tiles the RTL can simulate."""
import numpy as np
import pytest

pytest.importorskip("amaranth")

from spikemllm.hardware.accel_model import (AcceleratorConfig, expected_issue_cycles, issue_cycles,  # noqa: E402
                                            job_cost, tile_cycles)
from spikemllm.hardware.rtl_sim import simulate_tile  # noqa: E402
from spikemllm.hardware.tile_reference import nonzero_chunks_per_step, random_ternary_spikes  # noqa: E402
from spikemllm.hardware.workload import MatmulJob  # noqa: E402


@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("seed,rows,lanes,chunks", [(0, 2, 4, 3), (1, 3, 2, 4), (2, 4, 8, 1)])
def test_tile_rule_equals_rtl_cycles(seed, rows, lanes, chunks, skip):
    rng = np.random.default_rng(seed)
    cols = lanes * chunks
    W = rng.integers(-8, 8, size=(rows, cols))
    spikes = [random_ternary_spikes(rng, int(T), cols, float(fr))
              for T, fr in zip(rng.integers(1, 5, size=5), rng.uniform(0.02, 0.6, size=5))]
    run = simulate_tile(W, spikes, lanes=lanes, skip_zero_chunks=skip)
    per_token = [issue_cycles([len(c) for c in nonzero_chunks_per_step(s, lanes)], chunks, skip) for s in spikes]
    assert sum(per_token) == run.issued_cycles
    assert tile_cycles(per_token, chunks, latency=1, double_buffered=False) == run.total_cycles


def test_layer_model_equals_sum_of_rtl_tiles():
    # a 2x2 grid of tiles (out = 2*rows, in = 2*lanes*chunks), three tokens of different T, dense schedule
    rows, lanes, chunks = 2, 2, 2
    cfg = AcceleratorConfig(rows=rows, lanes=lanes, chunks=chunks, skip_zero_chunks=False,
                            double_buffer_weights=False, pipeline_latency=1, hbm_bandwidth=1e30)
    rng = np.random.default_rng(5)
    out_f, in_f = 2 * rows, 2 * lanes * chunks
    W = rng.integers(-8, 8, size=(out_f, in_f))
    Ts = [3, 1, 2]
    spikes = [random_ternary_spikes(rng, T, in_f, 0.4) for T in Ts]
    rtl = 0
    for r0 in range(0, out_f, rows):
        for c0 in range(0, in_f, lanes * chunks):
            sub = [s[:, c0:c0 + lanes * chunks] for s in spikes]
            rtl += simulate_tile(W[r0:r0 + rows, c0:c0 + lanes * chunks], sub, lanes=lanes,
                                 skip_zero_chunks=False).total_cycles
    job = MatmulJob("t", "lm", in_f, out_f, 1, tuple(("text", 1, float(T), 0.4) for T in Ts), weight_bits=4)
    assert job_cost(job, cfg).array_cycles == rtl


def test_expected_issue_cycles_matches_monte_carlo():
    rng = np.random.default_rng(3)
    lanes, chunks, T, fr = 4, 6, 3, 0.05
    sims = [issue_cycles([len(c) for c in nonzero_chunks_per_step(random_ternary_spikes(rng, T, lanes * chunks, fr),
                                                                  lanes)], chunks, True) for _ in range(4000)]
    assert np.mean(sims) == pytest.approx(expected_issue_cycles(T, chunks, lanes, fr, True), rel=0.02)
    assert expected_issue_cycles(T, chunks, lanes, fr, False) == T * chunks
