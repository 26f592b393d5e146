"""Cost primitives shared by energy accounting and the hardware model: energy per operation and per byte moved
(kept as data with their sources) and the accumulator width of a spike-driven integer datapath.

A leaf module: :mod:`spikemllm.energy` and :mod:`spikemllm.hardware` both price with it, and it imports neither.

Why data and not constants sprinkled in code: every energy figure this package prints must be traceable to a
source and swappable (another node, another memory). A table is a name, a node, a voltage and two maps: pJ per
operation and pJ per byte moved.

45 nm figures: M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, slide/table
"Rough energy costs for various operations in 45 nm, 0.9 V":
  integer add 8b 0.03 pJ, 16b 0.05 pJ, 32b 0.1 pJ; integer multiply 8b 0.2 pJ, 32b 3.1 pJ;
  FP add 16b 0.4 pJ, 32b 0.9 pJ; FP multiply 16b 1.1 pJ, 32b 3.7 pJ;
  memory, 64-bit access: 8 KB SRAM 10 pJ, 32 KB SRAM 20 pJ, 1 MB SRAM 100 pJ, DRAM 1.3-2.6 nJ.
  The spiking literature's "MAC 4.6 pJ / AC 0.9 pJ" are Horowitz's FP32 mult + add and FP32 add.
HBM2: M. O'Connor et al., "Fine-Grained DRAM: Energy-Efficient DRAM for Extreme Bandwidth Systems", MICRO 2017:
  "the energy to access a bit in HBM2 is approximately 3.97 pJ/bit" (activation + on-die movement + I/O).

28 nm table: derived by a stated rule, not measured (the paper's SMIC 28 nm library is not public). Dynamic
energy E = C V^2 with capacitance taken proportional to feature size, so E_28 = E_45 * (28/45) * (V_28/V_45)^2;
at 0.9 V for both nodes the factor is 0.622. The rule is applied to logic and on-chip SRAM only; off-chip
DRAM/HBM access energy is dominated by the DRAM die and the interface, not by the accelerator's node, so it is
carried over unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping
from .errors import ConfigError

__all__ = ["EnergyTable", "HOROWITZ_45NM", "TABLE_28NM", "scale_table", "int_add_pj", "get_table", "TABLES",
           "accumulator_bits"]


@dataclass(frozen=True)
class EnergyTable:
    """pJ per operation (``ops``) and pJ per byte moved (``memory``), with a source line per entry."""

    name: str
    node_nm: float
    voltage_v: float
    ops: Mapping[str, float]
    memory: Mapping[str, float]
    sources: Mapping[str, str] = field(default_factory=dict)
    note: str = ""

    def op(self, key: str) -> float:
        """Energy of one operation in pJ (e.g. ``"mac_fp16"``, ``"ac_fp32"``, ``"add_int32"``)."""
        try:
            return float(self.ops[key])
        except KeyError:
            raise KeyError(f"table {self.name!r} has no operation {key!r}; known: {sorted(self.ops)}") from None

    def mem(self, key: str) -> float:
        """Energy of moving one byte in pJ (e.g. ``"sram_32kb"``, ``"hbm2"``, ``"dram"``)."""
        try:
            return float(self.memory[key])
        except KeyError:
            raise KeyError(f"table {self.name!r} has no memory {key!r}; known: {sorted(self.memory)}") from None

    def source(self, key: str) -> str:
        return self.sources.get(key, "")


_H14 = "Horowitz ISSCC 2014, 45 nm 0.9 V"
_OPS_45 = {
    "add_int8": 0.03, "add_int16": 0.05, "add_int32": 0.1,
    "mult_int8": 0.2, "mult_int32": 3.1,
    "add_fp16": 0.4, "mult_fp16": 1.1, "add_fp32": 0.9, "mult_fp32": 3.7,
    # composite figures, each the sum of the two above (a MAC = one multiply + one add)
    "mac_fp32": 3.7 + 0.9, "mac_fp16": 1.1 + 0.4, "mac_int8": 0.2 + 0.03, "mac_int8_acc32": 0.2 + 0.1,
    # the spiking literature's accumulate: an FP32 add (0.9 pJ). A spike-driven integer datapath adds integer
    # weights into an integer accumulator instead; use int_add_pj(bits) for that.
    "ac_fp32": 0.9,
}
_SRC_OPS_45 = {k: _H14 for k in _OPS_45}
_SRC_OPS_45.update({"mac_fp32": f"{_H14}: FP32 mult 3.7 + add 0.9", "mac_fp16": f"{_H14}: FP16 mult 1.1 + add 0.4",
                    "mac_int8": f"{_H14}: INT8 mult 0.2 + add 0.03",
                    "mac_int8_acc32": f"{_H14}: INT8 mult 0.2 + INT32 add 0.1",
                    "ac_fp32": f"{_H14}: FP32 add (the 'AC 0.9 pJ' of the SNN literature)"})
_MEM_45 = {
    "sram_8kb": 10.0 / 8, "sram_32kb": 20.0 / 8, "sram_1mb": 100.0 / 8,
    "dram": 1300.0 / 8,  # the low end of Horowitz's 1.3-2.6 nJ per 64-bit access
    "hbm2": 3.97 * 8,
}
_SRC_MEM_45 = {
    "sram_8kb": f"{_H14}: 10 pJ per 64-bit access", "sram_32kb": f"{_H14}: 20 pJ per 64-bit access",
    "sram_1mb": f"{_H14}: 100 pJ per 64-bit access",
    "dram": f"{_H14}: 1.3-2.6 nJ per 64-bit access (low end taken)",
    "hbm2": "O'Connor et al. MICRO 2017: HBM2 ~3.97 pJ/bit",
}

HOROWITZ_45NM = EnergyTable(
    name="45nm", node_nm=45.0, voltage_v=0.9,
    ops=MappingProxyType(dict(_OPS_45)), memory=MappingProxyType(dict(_MEM_45)),
    sources=MappingProxyType({**_SRC_OPS_45, **_SRC_MEM_45}),
    note="Horowitz ISSCC 2014 (45 nm, 0.9 V); HBM2 from O'Connor MICRO 2017",
)

_OFF_CHIP = ("dram", "hbm2")


def scale_table(table: EnergyTable, node_nm: float, voltage_v: float, name: str | None = None) -> EnergyTable:
    """Scale logic and SRAM energies by (node/node0) * (V/V0)^2; off-chip memory energies are kept.

    A first-order rule (E = C V^2, C ~ feature size), stated so that anyone can disagree with it in one line.
    """
    if node_nm <= 0 or voltage_v <= 0:
        raise ConfigError(f"node and voltage must be positive, got {node_nm} nm, {voltage_v} V")
    k = (node_nm / table.node_nm) * (voltage_v / table.voltage_v) ** 2
    rule = f"scaled from {table.name} by ({node_nm:g}/{table.node_nm:g})*({voltage_v:g}/{table.voltage_v:g})^2 = {k:.3f}"
    ops = {key: v * k for key, v in table.ops.items()}
    mem = {key: (v if key in _OFF_CHIP else v * k) for key, v in table.memory.items()}
    sources = {key: (f"{src}; {rule}" if key not in _OFF_CHIP else f"{src}; off-chip, not scaled")
               for key, src in table.sources.items()}
    return EnergyTable(name=name or f"{node_nm:g}nm", node_nm=node_nm, voltage_v=voltage_v,
                       ops=MappingProxyType(ops), memory=MappingProxyType(mem), sources=MappingProxyType(sources),
                       note=f"{table.note}; {rule} (logic and SRAM only)")


TABLE_28NM = scale_table(HOROWITZ_45NM, 28.0, 0.9, name="28nm")

TABLES: Mapping[str, EnergyTable] = MappingProxyType({"45nm": HOROWITZ_45NM, "28nm": TABLE_28NM})


def get_table(name: str) -> EnergyTable:
    """Look a table up by name ("45nm", "28nm")."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown energy table {name!r}; known: {sorted(TABLES)}") from None


def int_add_pj(bits: int, table: EnergyTable = HOROWITZ_45NM) -> float:
    """Energy of one integer add of ``bits`` width, interpolated linearly between the table's 8/16/32-bit points.

    Why linear: a ripple/prefix adder's switched capacitance grows about linearly with width; beyond 32 bits the
    32-bit figure is scaled in proportion.
    """
    if bits < 1:
        raise ConfigError(f"bits must be >= 1, got {bits}")
    pts = [(8, table.op("add_int8")), (16, table.op("add_int16")), (32, table.op("add_int32"))]
    if bits <= 8:
        return pts[0][1] * bits / 8
    if bits >= 32:
        return pts[2][1] * bits / 32
    for (b0, e0), (b1, e1) in zip(pts, pts[1:]):
        if b0 <= bits <= b1:
            return e0 + (e1 - e0) * (bits - b0) / (b1 - b0)
    raise AssertionError("unreachable")


def accumulator_bits(weight_bits: int, max_timesteps: int, fan_in: int) -> int:
    """Signed accumulator width that can never overflow (bit-plane spikes, Horner accumulation).

    |y| <= (2^T - 1) * fan_in * 2^(weight_bits-1) < 2^(T + ceil(log2 fan_in) + weight_bits - 1); one more bit
    for the sign. (The most negative weight times a -1 spike gives +2^(weight_bits-1), hence no slack.)
    """
    if weight_bits < 2 or max_timesteps < 1 or fan_in < 1:
        raise ValueError(
            f"need weight_bits >= 2, max_timesteps >= 1, fan_in >= 1; got {weight_bits}, {max_timesteps}, {fan_in}"
        )
    return weight_bits + max_timesteps + math.ceil(math.log2(fan_in))
