"""Operation and byte counts per layer and per modality: from a real run's statistics, or from shapes.

Why two sources with one result type: a converted model's run (``spikemllm.collect_stats``) gives exact spikes
and ACs; a workload described by shapes (``spikemllm.hardware.workload``) gives expected counts from a firing
rate. Both end as ``LayerCount`` so the same pricing (``spikemllm.energy.report``) applies.

Definitions (the same as ``spikemllm.nn.stats``):
- MACs: what the dense layer does on the same tokens: tokens x in x out;
- ACs: one accumulate per spike per output feature (spikes x fan-out);
- firing rate: spikes / (input neurons x the timesteps each runs).
Bytes per layer (what a weight-streaming accelerator moves; stated so they can be argued with):
- weights: in x out x bits/8 per forward pass (FP16: 2 bytes), read from off-chip memory;
- activations: dense reads FP16 inputs and writes FP16 outputs; spiking reads the integer codes the spikes are
  generated from (``level_spec(coder, timesteps=T).bits`` per element) and writes FP16 outputs;
- KV cache: the outputs of the key and value projections (named by ``spikemllm.models.shape.KV_PROJECTIONS``)
  are written once and read once by attention (FP16 dense, ``kv_bits`` spiking).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import ConfigError
from ..coding import DEFAULT_CODER
from ..levels import level_spec
from ..models.shape import KV_PROJECTIONS

__all__ = ["ModalityCount", "LayerCount", "count_linear", "counts_from_stats", "counts_from_workload"]

@dataclass(frozen=True)
class ModalityCount:
    """Counts of one layer for one modality's tokens. Floats, because shape-based counts are expectations."""

    tokens: float
    timesteps: float  # mean timesteps per token
    neuron_steps: float
    spikes: float
    acs: float
    macs: float

    @property
    def firing_rate(self) -> float:
        return self.spikes / self.neuron_steps if self.neuron_steps else 0.0


@dataclass(frozen=True)
class LayerCount:
    """One linear layer (``repeat`` identical copies) with counts per modality."""

    name: str
    in_features: int
    out_features: int
    weight_bits: int
    coder: str = DEFAULT_CODER
    per_modality: Mapping[str, ModalityCount] = field(default_factory=dict)
    weight_passes: float = 1.0  # forward passes that read the weights (x repeat for repeated layers)

    @property
    def is_kv(self) -> bool:
        return self.name.split(".")[-1].split(" ")[0] in KV_PROJECTIONS

    def weight_bytes(self, bits: int | None = None) -> float:
        b = self.weight_bits if bits is None else bits
        return self.in_features * self.out_features * b / 8 * self.weight_passes

    def code_bits(self, modality: str) -> int:
        """Bits of the integer code one input element carries at this modality's (rounded-up) timesteps."""
        c = self.per_modality[modality]
        t = max(1, math.ceil(c.timesteps - 1e-9))
        return level_spec(self.coder, timesteps=t).bits

    def act_bytes(self, modality: str, dense: bool) -> float:
        c = self.per_modality[modality]
        bytes_in = c.tokens * self.in_features * (2.0 if dense else self.code_bits(modality) / 8)
        return bytes_in + c.tokens * self.out_features * 2.0

    def kv_bytes(self, modality: str, bits: int) -> float:
        """KV-cache bytes written (and read once) for this modality's tokens; zero unless a k/v projection."""
        if not self.is_kv:
            return 0.0
        return 2.0 * self.per_modality[modality].tokens * self.out_features * bits / 8


def count_linear(name: str, in_features: int, out_features: int, groups: Mapping[str, tuple[float, float, float]],
                 *, weight_bits: int = 4, coder: str = DEFAULT_CODER, repeat: int = 1) -> LayerCount:
    """Expected counts from shapes: ``groups[modality] = (tokens, timesteps, firing_rate)``."""
    per: dict[str, ModalityCount] = {}
    for mod, (n, T, fr) in groups.items():
        if n < 0 or T <= 0 or not 0 <= fr <= 1:
            raise ConfigError(f"bad group {mod}: tokens={n}, timesteps={T}, firing_rate={fr}")
        ns = n * in_features * T * repeat
        per[mod] = ModalityCount(tokens=n * repeat, timesteps=T, neuron_steps=ns, spikes=ns * fr,
                                 acs=ns * fr * out_features, macs=n * in_features * out_features * repeat)
    return LayerCount(name=name if repeat == 1 else f"{name} x{repeat}", in_features=in_features,
                      out_features=out_features, weight_bits=weight_bits, coder=coder, per_modality=per,
                      weight_passes=float(repeat))


def counts_from_stats(stats: Any, *, weight_passes: float = 1.0) -> list[LayerCount]:
    """LayerCounts from ``spikemllm.RunStats`` (exact integers from a real run).

    ``weight_passes``: forward calls during the collection (each reads every weight once); RunStats does not
    record calls, so the caller says (1 for a single prefill).
    """
    out: list[LayerCount] = []
    for name, ls in stats.layers.items():
        per = {}
        for mod, c in ls.per_modality.items():
            if c.tokens == 0:
                continue
            per[mod] = ModalityCount(tokens=c.tokens, timesteps=c.mean_timesteps, neuron_steps=c.neuron_steps,
                                     spikes=c.spikes, acs=c.acs, macs=c.macs)
        out.append(LayerCount(name=name, in_features=ls.in_features, out_features=ls.out_features,
                              weight_bits=ls.weight_bits, coder=ls.coder, per_modality=per,
                              weight_passes=weight_passes))
    return out


def counts_from_workload(w: Any, phase: str = "prefill") -> list[LayerCount]:
    """Expected LayerCounts of a ``spikemllm.hardware.workload.Workload`` (linear layers; attention matmuls
    are left to the hardware model). ``phase``: "prefill", "decode" (all generated tokens) or "both"."""
    from ..hardware.workload import decode_jobs, prefill_jobs

    if phase not in ("prefill", "decode", "both"):
        raise ConfigError(f"phase={phase!r} is unknown; allowed values: prefill, decode, both")
    counts: list[LayerCount] = []

    def add(jobs: list, passes: int) -> None:
        for j in jobs:
            if j.weights_from != "params":
                continue
            groups = {m: (n * passes, T, fr) for m, n, T, fr in j.groups}
            c = count_linear(j.name, j.in_features, j.out_features, groups, weight_bits=j.weight_bits,
                             repeat=j.repeat)
            counts.append(LayerCount(name=c.name, in_features=c.in_features, out_features=c.out_features,
                                     weight_bits=c.weight_bits, coder=c.coder, per_modality=c.per_modality,
                                     weight_passes=c.weight_passes * passes))

    if phase in ("prefill", "both"):
        add(prefill_jobs(w), 1)
    if phase in ("decode", "both"):
        add(decode_jobs(w, w.prompt_tokens + 1), w.output_tokens)  # linear layers do not depend on the context
    return counts
