"""Energy per token of a measured run: FP16 dense against spiking, compute and memory traffic apart.

Prices the run's exact counts (:func:`spikemllm.energy.counts_from_stats`) with the 45 nm table
(:mod:`spikemllm.energy.tables`: Horowitz, ISSCC 2014; HBM2 for weights and KV cache, 32 KB SRAM for
activations) through :func:`spikemllm.energy.energy_report` -- the same pricing ``spikemllm energy`` uses.
"FP16" prices the same tokens as a dense FP16 model would run them (MACs, 16-bit weights); "spiking" prices
the run's accumulates and its integer weights and codes. Every weight is read once per forward call of its
layer (the vision tower runs once per prompt, the LM once per generated token), which is counted.

Per token means per token that passed through the language model (prompt, image tokens and generated
tokens); the vision tower's work is spread over them.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

from ..energy import EnergyOptions, counts_from_stats, energy_report
from ..nn.stats import RunStats

OPTIONS = EnergyOptions(table="45nm")
KEYS = ("fp16_compute_pj", "fp16_memory_pj", "spike_compute_pj", "spike_memory_pj")


def energy_per_token(stats: RunStats, calls: Mapping[str, int], regions: Mapping[str, str],
                     options: EnergyOptions = OPTIONS) -> dict[str, float]:
    """pJ per LM token of the run: FP16 and spiking, compute and memory (see module docs)."""
    counts = [dataclasses.replace(lc, weight_passes=float(calls.get(lc.name, 1)))
              for lc in counts_from_stats(stats)]
    tot = energy_report(counts, options).totals
    lm = [ls.total().tokens for name, ls in stats.layers.items() if regions.get(name) == "lm"]
    n = max(lm) if lm else max((ls.total().tokens for ls in stats.layers.values()), default=0)
    if n == 0:
        return {}
    return {"tokens": float(n), "fp16_compute_pj": tot["dense_compute"] / n, "fp16_memory_pj": tot["dense_memory"] / n,
            "spike_compute_pj": tot["spike_compute"] / n, "spike_memory_pj": tot["spike_memory"] / n}
