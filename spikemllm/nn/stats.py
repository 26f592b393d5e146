"""Run statistics of spiking layers: spikes, firing rates, ACs against MACs, per layer and per modality.

Collected only when asked (:func:`collect_stats`), so a plain forward pays nothing. Counts are exact
integers: they come from the integer codes, which is what the spikes carry (``|q|`` spikes for rate coding,
``popcount(|q|)`` for TC-LIF), and a test checks them against the spike trains themselves.

* ``neuron_steps``: input neurons times the timesteps each one runs (the denominator of the firing rate);
* ``spikes``: spikes emitted; ``spikes_per_step[t]``: spikes at step ``t`` of the ``T_max`` window;
* ``acs``: accumulates, one per spike per output feature (fan-out), plus none for silent inputs;
* ``macs``: what the dense layer would do on the same tokens (``tokens * in * out``).

A forward pass does not wait for its counts: each layer adds them to tensors on the model's device
(:meth:`LayerStats.add_pending`), and they are read (one host transfer per layer) the first time the counts are
looked at. On a GPU a per-call ``.tolist()`` would stall every layer.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import nn

MODALITIES = ("vision", "text")


@dataclass
class ModalityCounts:
    tokens: int = 0
    neuron_steps: int = 0
    spikes: int = 0
    acs: int = 0
    macs: int = 0
    spikes_per_step: list[int] = field(default_factory=list)
    steps_per_token: int = 0  # sum over tokens of their T (average T = steps_per_token / tokens)

    def add(self, other: "ModalityCounts") -> None:
        self.tokens += other.tokens
        self.neuron_steps += other.neuron_steps
        self.spikes += other.spikes
        self.acs += other.acs
        self.macs += other.macs
        self.steps_per_token += other.steps_per_token
        n = max(len(self.spikes_per_step), len(other.spikes_per_step))
        a = [0] * (n - len(self.spikes_per_step)) + self.spikes_per_step  # align on the last step (LSB)
        b = [0] * (n - len(other.spikes_per_step)) + other.spikes_per_step
        self.spikes_per_step = [x + y for x, y in zip(a, b)]

    @property
    def firing_rate(self) -> float:
        return self.spikes / self.neuron_steps if self.neuron_steps else 0.0

    @property
    def mean_timesteps(self) -> float:
        return self.steps_per_token / self.tokens if self.tokens else 0.0


@dataclass
class LayerStats:
    name: str
    in_features: int
    out_features: int
    weight_bits: int
    coder: str
    per_modality: dict[str, ModalityCounts] = field(default_factory=lambda: {m: ModalityCounts() for m in MODALITIES})
    # t_max -> (spikes per step [2, t_max], tokens [2], timesteps [2]) on the device, rows (vision, text)
    _pending: dict[int, list[torch.Tensor]] = field(default_factory=dict, repr=False, compare=False)

    def __getattribute__(self, name: str) -> Any:
        if name == "per_modality" and object.__getattribute__(self, "_pending"):
            object.__getattribute__(self, "flush")()
        return object.__getattribute__(self, name)

    def add_pending(self, t_max: int, steps: torch.Tensor, tokens: torch.Tensor, timesteps: torch.Tensor) -> None:
        """Add one call's counts (device tensors, rows vision and text) without reading them."""
        cur = self._pending.get(t_max)
        if cur is None:
            self._pending[t_max] = [steps.clone(), tokens.clone(), timesteps.clone()]
        else:
            for acc, new in zip(cur, (steps, tokens, timesteps)):
                acc.add_(new)

    def flush(self) -> None:
        """Move the pending device counts into ``per_modality`` (exact integers, so the order does not matter)."""
        pending, self._pending = self._pending, {}
        counts = object.__getattribute__(self, "per_modality")
        for steps, tokens, timesteps in pending.values():
            steps_l, tokens_l, ts_l = steps.tolist(), tokens.tolist(), timesteps.tolist()
            for j, name in enumerate(MODALITIES):
                k = tokens_l[j]
                if k == 0:
                    continue
                spikes = int(sum(steps_l[j]))
                counts[name].add(ModalityCounts(
                    tokens=k, neuron_steps=ts_l[j] * self.in_features, spikes=spikes, acs=spikes * self.out_features,
                    macs=k * self.in_features * self.out_features, spikes_per_step=steps_l[j],
                    steps_per_token=ts_l[j]))

    def total(self) -> ModalityCounts:
        t = ModalityCounts()
        for c in self.per_modality.values():
            t.add(c)
        return t


@dataclass
class RunStats:
    """Statistics of one or more forward passes; ``merge`` adds another run (e.g. from another process)."""

    layers: dict[str, LayerStats] = field(default_factory=dict)

    def layer(self, name: str, **meta: Any) -> LayerStats:
        if name not in self.layers:
            self.layers[name] = LayerStats(name=name, **meta)
        return self.layers[name]

    def merge(self, other: "RunStats") -> "RunStats":
        for name, ls in other.layers.items():
            mine = self.layer(name, in_features=ls.in_features, out_features=ls.out_features,
                              weight_bits=ls.weight_bits, coder=ls.coder)
            for m, c in ls.per_modality.items():
                mine.per_modality.setdefault(m, ModalityCounts()).add(c)
        return self

    def totals(self, modality: str | None = None) -> ModalityCounts:
        t = ModalityCounts()
        for ls in self.layers.values():
            if modality is None:
                t.add(ls.total())
            else:
                t.add(ls.per_modality[modality])
        return t

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, ls in self.layers.items():
            out[name] = {
                "in_features": ls.in_features, "out_features": ls.out_features, "weight_bits": ls.weight_bits,
                "coder": ls.coder,
                "per_modality": {m: {**vars(c), "firing_rate": c.firing_rate} for m, c in ls.per_modality.items()},
            }
        return out

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per layer: name, firing rate, spikes, ACs, MACs (for tables and plots)."""
        rows = []
        for name, ls in self.layers.items():
            t = ls.total()
            rows.append({"layer": name, "firing_rate": t.firing_rate, "spikes": t.spikes, "acs": t.acs,
                         "macs": t.macs, "mean_T": t.mean_timesteps})
        return rows


@contextlib.contextmanager
def collect_stats(model: nn.Module) -> Iterator[RunStats]:
    """Collect statistics of every SpikeLinear in ``model`` during the block::

        with spikemllm.collect_stats(model) as stats:
            model(**inputs)
        print(stats.totals().firing_rate)
    """
    from .spike_linear import SpikeLinear  # local: spike_linear imports this module

    stats = RunStats()
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, SpikeLinear)]
    for n, m in layers:
        m._stats = stats
        m._stats_name = n or m.__class__.__name__
    try:
        yield stats
    finally:
        for _, m in layers:
            m._stats = None
