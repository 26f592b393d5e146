"""Price LayerCounts with an energy table: FP16 dense against spiking, with and without memory traffic.

Why both with and without memory: synaptic-operation counts alone (the MAC 4.6 pJ / AC 0.9 pJ convention)
make spiking look orders of magnitude cheaper; once the bytes of weights, activations and KV cache are priced
the gap shrinks to roughly the ratio of bytes moved. The report shows both so neither is hidden.

Pricing rules (all printed by ``EnergyReport.format``):
- dense compute: MACs x ``dense_op`` (default FP16 MAC = FP16 mult + add);
- spiking compute: ACs x one accumulate, either the literature's ``ac_fp32`` (0.9 pJ at 45 nm) or an integer
  add at the accumulator's width (``int``), which is what an integer spike datapath does;
- memory: weights and KV cache from ``offchip`` memory, activations through ``onchip`` SRAM.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from ..costs import EnergyTable, accumulator_bits, get_table, int_add_pj
from .counting import LayerCount

__all__ = ["EnergyOptions", "EnergyRow", "EnergyReport", "energy_report", "fit_name", "CUT_MARK", "NAME_WIDTH"]

CUT_MARK = "\u2026"  # "…": shows that the start of a layer name was cut
NAME_WIDTH = 48  # widest layer column; longer names lose leading parts


def fit_name(name: str, width: int = NAME_WIDTH) -> str:
    """``name`` in at most ``width`` characters, keeping its end: the block index and projection
    (``layers.3.mlp.down_proj``) tell rows apart, the common prefix (``model.language_model.``) does not. Whole
    leading dotted parts go first; a leading ``…`` marks the cut."""
    if len(name) <= width:
        return name
    parts = name.split(".")
    for i in range(1, len(parts)):
        tail = ".".join(parts[i:])
        if len(tail) + len(CUT_MARK) <= width:
            return CUT_MARK + tail
    return CUT_MARK + name[len(name) - (width - len(CUT_MARK)):]


@dataclass(frozen=True)
class EnergyOptions:
    table: str = "45nm"
    dense_op: str = "mac_fp16"
    spike_ac: str = "ac_fp32"  # or "int": integer add at the accumulator width
    offchip: str = "hbm2"
    onchip: str = "sram_32kb"
    kv_bits: int = 8  # spiking model's KV cache; the dense model's is FP16

    def ac_pj(self, layer: LayerCount, timesteps: float, t: EnergyTable) -> float:
        if self.spike_ac == "int":
            return int_add_pj(accumulator_bits(max(2, layer.weight_bits), max(1, math.ceil(timesteps)),
                                               layer.in_features), t)
        return t.op(self.spike_ac)


@dataclass(frozen=True)
class EnergyRow:
    """Energies in pJ of one (layer, modality)."""

    layer: str
    modality: str
    macs: float
    acs: float
    firing_rate: float
    timesteps: float
    dense_compute: float
    spike_compute: float
    dense_memory: float
    spike_memory: float


@dataclass
class EnergyReport:
    rows: list[EnergyRow]
    options: EnergyOptions
    table: EnergyTable
    totals: dict[str, float] = field(default_factory=dict)

    def format(self, per_layer: bool = True) -> str:
        t, o = self.table, self.options
        lines = [f"Energy table: {t.name} ({t.note})",
                 f"  dense op   {o.dense_op} = {t.op(o.dense_op):.3g} pJ  [{t.source(o.dense_op)}]",
                 f"  spike AC   {o.spike_ac} = " + (f"{t.op(o.spike_ac):.3g} pJ  [{t.source(o.spike_ac)}]"
                                                    if o.spike_ac != "int" else "integer add at accumulator width "
                                                    "(weight bits + T + log2 fan-in), interpolated 8/16/32-bit"),
                 f"  off-chip   {o.offchip} = {t.mem(o.offchip):.3g} pJ/B  [{t.source(o.offchip)}]",
                 f"  on-chip    {o.onchip} = {t.mem(o.onchip):.3g} pJ/B  [{t.source(o.onchip)}]",
                 f"  KV cache bits: dense 16, spiking {o.kv_bits}", ""]
        if per_layer:
            w = min(NAME_WIDTH, max([len("layer"), *(len(r.layer) for r in self.rows)])) + 1
            hdr = f"{'layer':<{w}}{'mod':<7}{'MACs':>11}{'ACs':>11}{'rate':>6}{'T':>5}" \
                  f"{'FP16 uJ':>10}{'SNN uJ':>10}{'FP16+mem':>10}{'SNN+mem':>10}"
            lines += [hdr, "-" * len(hdr)]
            for r in self.rows:
                lines.append(f"{fit_name(r.layer, w - 1):<{w}}{r.modality:<7}{r.macs:>11.3e}{r.acs:>11.3e}"
                             f"{r.firing_rate:>6.3f}"
                             f"{r.timesteps:>5.2g}{r.dense_compute / 1e6:>10.3g}{r.spike_compute / 1e6:>10.3g}"
                             f"{(r.dense_compute + r.dense_memory) / 1e6:>10.3g}"
                             f"{(r.spike_compute + r.spike_memory) / 1e6:>10.3g}")
            lines.append("")
        s = self.totals
        lines += [
            f"MACs {s['macs']:.4e}   ACs {s['acs']:.4e}   ACs/MACs {s['acs'] / max(s['macs'], 1):.3f}   "
            f"firing rate {s['firing_rate']:.4f}",
            f"compute only:      FP16 {s['dense_compute'] / 1e6:.4g} uJ   spiking {s['spike_compute'] / 1e6:.4g} uJ"
            f"   ratio {s['dense_compute'] / max(s['spike_compute'], 1e-30):.2f}x",
            f"with memory:       FP16 {(s['dense_compute'] + s['dense_memory']) / 1e6:.4g} uJ   spiking "
            f"{(s['spike_compute'] + s['spike_memory']) / 1e6:.4g} uJ   ratio "
            f"{(s['dense_compute'] + s['dense_memory']) / max(s['spike_compute'] + s['spike_memory'], 1e-30):.2f}x",
            f"memory share:      FP16 {s['dense_memory'] / max(s['dense_compute'] + s['dense_memory'], 1e-30):.1%}"
            f"   spiking {s['spike_memory'] / max(s['spike_compute'] + s['spike_memory'], 1e-30):.1%}",
        ]
        return "\n".join(lines)


def energy_report(counts: Sequence[LayerCount], options: EnergyOptions | None = None) -> EnergyReport:
    """Price every (layer, modality); a layer's weight bytes are split over modalities by token share."""
    o = options or EnergyOptions()
    t = get_table(o.table)
    e_dense, e_off, e_on = t.op(o.dense_op), t.mem(o.offchip), t.mem(o.onchip)
    rows: list[EnergyRow] = []
    for lc in counts:
        total_tokens = sum(c.tokens for c in lc.per_modality.values()) or 1.0
        for mod, c in lc.per_modality.items():
            share = c.tokens / total_tokens
            dense_mem = (lc.weight_bytes(16) * share + lc.kv_bytes(mod, 16)) * e_off + lc.act_bytes(mod, True) * e_on
            spike_mem = (lc.weight_bytes() * share + lc.kv_bytes(mod, o.kv_bits)) * e_off \
                + lc.act_bytes(mod, False) * e_on
            rows.append(EnergyRow(layer=lc.name, modality=mod, macs=c.macs, acs=c.acs, firing_rate=c.firing_rate,
                                  timesteps=c.timesteps, dense_compute=c.macs * e_dense,
                                  spike_compute=c.acs * o.ac_pj(lc, c.timesteps, t), dense_memory=dense_mem,
                                  spike_memory=spike_mem))
    spikes = sum(c.spikes for lc in counts for c in lc.per_modality.values())
    slots = sum(c.neuron_steps for lc in counts for c in lc.per_modality.values())
    totals = {k: sum(getattr(r, k) for r in rows) for k in
              ("macs", "acs", "dense_compute", "spike_compute", "dense_memory", "spike_memory")}
    totals["firing_rate"] = spikes / slots if slots else 0.0
    return EnergyReport(rows=rows, options=o, table=t, totals=totals)
