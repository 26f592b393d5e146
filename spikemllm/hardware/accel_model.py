"""Cycle-level performance and power model of the spike-driven accelerator.

Why this level: the RTL tile is exact but simulates thousands of cycles per second; a 7B model needs ~10^9
cycles per token. The model reuses the tile's exact cycle rule (``tile_cycles``, checked against the RTL in the
tests) and composes tiles into layers, layers into a prefill and a decode, with memory traffic and overlap
stated as rules:

* The array is ``rows`` PEs x ``lanes`` spike lanes; each PE holds ``chunks`` weight chunks, so one tile is
  rows x (lanes*chunks) weights. A layer (out x in) is cut into ceil(out/rows) x ceil(in/(lanes*chunks)) tiles.
* Per token and timestep a tile issues max(1, nonzero chunks) cycles with zero-chunk skipping (else ``chunks``);
  with independent spikes of rate r, a chunk is nonzero with p = 1-(1-r)^lanes.
* Tokens are processed in blocks whose input codes (TC-LIF: T+1 bits/element) fit the activation
  SRAM and whose partial sums fit the accumulator SRAM; weights are re-streamed from HBM once per block unless
  the whole layer fits the weight SRAM.
* Weight loading is double-buffered (a tile loads while the previous one computes); array, HBM and vector unit
  overlap, so a job takes the longest of the three (an optimistic, stated assumption).
* Energy: accumulates (nonzero spike x weight) and accumulator updates at the adder width, vector ops (dequant,
  requant, softmax) as FP16 multiply-adds, SRAM bytes, HBM bytes, plus static power over the elapsed time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

from ..errors import ConfigError
from ..costs import EnergyTable, accumulator_bits, get_table, int_add_pj
from ..levels import level_spec
from .workload import MatmulJob, Workload, decode_jobs, kv_cache_bytes, prefill_jobs
from .rates import PrefillDecodeRates

__all__ = ["AcceleratorConfig", "tile_cycles", "expected_issue_cycles", "JobCost", "PhaseResult",
           "AcceleratorResult", "job_cost", "run_phase", "run_accelerator"]

MiB = 1 << 20


@dataclass(frozen=True)
class AcceleratorConfig:
    """Every knob of the accelerator model; ``assumptions()`` prints them."""

    rows: int = 128
    lanes: int = 128
    chunks: int = 8
    clock_hz: float = 1.0e9
    hbm_bandwidth: float = 2.0e12  # bytes/s
    weight_sram_bytes: int = 8 * MiB
    act_sram_bytes: int = 8 * MiB
    acc_sram_bytes: int = 2 * MiB
    acc_bytes: int = 4  # partial sums in the accumulator SRAM
    out_bytes: int = 2  # FP16 outputs to the vector unit / residual stream
    vector_lanes: int = 512  # FP16 elementwise ops per cycle
    skip_zero_chunks: bool = True
    double_buffer_weights: bool = True
    pipeline_latency: int = 1  # cycles from a token's last spike cycle to its result (the RTL tile: 1)
    static_power_w: float = 0.5
    table: str = "28nm"
    sram: str = "sram_32kb"  # on-chip buffers built from banks of this size class
    hbm: str = "hbm2"

    def __post_init__(self) -> None:
        for f in ("rows", "lanes", "chunks", "vector_lanes", "acc_bytes", "out_bytes"):
            if getattr(self, f) < 1:
                raise ConfigError(f"{f} must be >= 1")
        for f in ("clock_hz", "hbm_bandwidth", "weight_sram_bytes", "act_sram_bytes", "acc_sram_bytes"):
            if getattr(self, f) <= 0:
                raise ConfigError(f"{f} must be > 0")

    @property
    def energy_table(self) -> EnergyTable:
        return get_table(self.table)

    def with_(self, **changes) -> "AcceleratorConfig":
        return replace(self, **changes)

    def assumptions(self) -> list[tuple[str, str]]:
        t = self.energy_table
        return [
            ("array", f"{self.rows} PEs x {self.lanes} spike lanes = {self.rows * self.lanes} ternary-gated adders; "
                      f"{self.chunks} weight chunks per PE (tile {self.rows} x {self.lanes * self.chunks})"),
            ("clock", f"{self.clock_hz / 1e6:g} MHz"),
            ("HBM bandwidth", f"{self.hbm_bandwidth / 1e9:g} GB/s"),
            ("SRAM weight / activation / accumulator", f"{self.weight_sram_bytes / MiB:g} / "
                                                       f"{self.act_sram_bytes / MiB:g} / {self.acc_sram_bytes / MiB:g} MiB"),
            ("vector unit", f"{self.vector_lanes} FP16 ops/cycle"),
            ("zero-chunk skipping", str(self.skip_zero_chunks)),
            ("weight double buffering; array/HBM/vector overlap", f"{self.double_buffer_weights}; yes"),
            ("static power", f"{self.static_power_w:g} W"),
            ("weights", "streamed HBM -> weight SRAM -> PE registers (SRAM fill + read per token block)"),
            ("activations", "TC-LIF integer codes in SRAM, bit-planes generated on the fly; FP16 outputs"),
            ("attention", "on the array: q spikes x K rows (scores), P spikes x V (values); K/V from HBM"),
            ("vector work", "2 FP16 ops per linear output (dequant/requant), 5 per attention score (softmax)"),
            ("energy table", f"{t.name}: {t.note}"),
            ("SRAM energy", f"{t.mem(self.sram):.3g} pJ/B ({self.sram}: {t.source(self.sram)})"),
            ("HBM energy", f"{t.mem(self.hbm):.3g} pJ/B ({t.source(self.hbm)})"),
            ("vector op energy", f"{t.op('mac_fp16'):.3g} pJ (FP16 multiply-add)"),
        ]


# ----------------------------------------------------------------------------------------------------------------
# the tile rule (exact; the RTL testbench checks it)

def tile_cycles(issue_cycles_per_token: Iterable[int], chunks: int, latency: int = 1,
                double_buffered: bool = False) -> int:
    """Cycles of one tile pass: load ``chunks`` cycles (hidden if double-buffered), then the issued spike cycles
    of all tokens back to back, then ``latency`` cycles until the last result is presented."""
    compute = sum(issue_cycles_per_token) + latency
    return max(chunks, compute) if double_buffered else chunks + compute


def issue_cycles(nonzero_chunks_per_step: Sequence[int], chunks: int, skip_zero_chunks: bool) -> int:
    """Issued cycles of one token given, per timestep, how many of its chunks hold a spike."""
    if skip_zero_chunks:
        return sum(max(1, n) for n in nonzero_chunks_per_step)
    return chunks * len(nonzero_chunks_per_step)


def expected_issue_cycles(timesteps: float, chunks: int, lanes: int, firing_rate: float,
                          skip_zero_chunks: bool) -> float:
    """E[issued cycles] of one token: T * E[max(1, X)], X ~ Binomial(chunks, p), p = 1-(1-r)^lanes.

    E[max(1, X)] = E[X] + P(X = 0) = chunks*p + (1-p)^chunks.
    """
    if not skip_zero_chunks:
        return timesteps * chunks
    p = 1.0 - (1.0 - firing_rate) ** lanes
    return timesteps * (chunks * p + (1.0 - p) ** chunks)


# ----------------------------------------------------------------------------------------------------------------
# one job

@dataclass
class JobCost:
    """Cycles, traffic, operation counts and energy (pJ, by component) of one matmul job (all its repeats)."""

    name: str
    array_cycles: float = 0.0
    hbm_cycles: float = 0.0
    vector_cycles: float = 0.0
    hbm_bytes: float = 0.0
    sram_bytes: float = 0.0
    acs: float = 0.0
    acc_updates: float = 0.0
    vector_ops: float = 0.0
    dense_macs: float = 0.0
    energy_pj: dict[str, float] = field(default_factory=dict)

    @property
    def cycles(self) -> float:
        return max(self.array_cycles, self.hbm_cycles, self.vector_cycles)

    @property
    def bound(self) -> str:
        c = {"array": self.array_cycles, "hbm": self.hbm_cycles, "vector": self.vector_cycles}
        return max(c, key=c.get)


def _tile_widths(in_features: int, lanes: int, chunks: int) -> list[int]:
    """Chunks used by each K-tile of a layer with ``in_features`` inputs."""
    width = lanes * chunks
    kt = math.ceil(in_features / width)
    last = in_features - (kt - 1) * width
    return [chunks] * (kt - 1) + [math.ceil(last / lanes)]


def job_cost(job: MatmulJob, cfg: AcceleratorConfig) -> JobCost:
    """Cost of one job on the accelerator under the rules in the module docstring."""
    t = cfg.energy_table
    M = job.tokens
    T_max = max(g[2] for g in job.groups)
    code_bytes = level_spec("tc-lif", timesteps=max(1, math.ceil(T_max))).bits / 8  # the code the planes come from
    nb = math.ceil(job.out_features / cfg.rows)
    ktiles = _tile_widths(job.in_features, cfg.lanes, cfg.chunks)
    lanes_used = min(cfg.lanes, job.in_features)
    # token blocking: inputs of a block in the activation SRAM, its partial sums in the accumulator SRAM
    block = min(M, max(1, int(cfg.act_sram_bytes // (job.in_features * code_bytes))),
                max(1, int(cfg.acc_sram_bytes // (cfg.rows * cfg.acc_bytes))))
    passes = math.ceil(M / block)
    # array cycles: every (row block, K tile, token block) is one tile pass
    per_token_issue = {c: sum(n * expected_issue_cycles(T, c, lanes_used, fr, cfg.skip_zero_chunks)
                              for _, n, T, fr in job.groups) / M for c in set(ktiles)}
    array = 0.0
    issued = 0.0
    for c in ktiles:
        for b in range(passes):
            n_tok = min(block, M - b * block)
            compute = n_tok * per_token_issue[c] + cfg.pipeline_latency
            array += max(c, compute) if cfg.double_buffer_weights else c + compute
            issued += n_tok * per_token_issue[c]
    array *= nb * job.repeat
    issued *= nb * job.repeat
    rows_used = min(cfg.rows, job.out_features)
    # traffic
    w_bytes = job.weight_bytes
    w_hbm = w_bytes if w_bytes / job.repeat <= cfg.weight_sram_bytes else w_bytes * passes
    in_bytes = M * job.in_features * code_bytes * job.repeat
    out_bytes = M * job.out_features * cfg.out_bytes * job.repeat
    act_resident = M * max(job.in_features * code_bytes, job.out_features * cfg.out_bytes) <= cfg.act_sram_bytes
    hbm_bytes = w_hbm + (0.0 if act_resident else in_bytes + out_bytes)
    sram_bytes = (w_bytes * passes + (w_hbm if w_hbm > 0 else 0.0)  # weight SRAM reads + fills
                  + in_bytes * nb  # inputs re-read once per row block
                  + (M * job.out_features * cfg.acc_bytes * 2 * (len(ktiles) - 1) * job.repeat)  # partial sums
                  + out_bytes)
    vector_ops = M * job.out_features * job.vector_ops_per_output * job.repeat
    acs = job.acs
    acc_updates = issued * rows_used
    add_pj = int_add_pj(accumulator_bits(max(2, job.weight_bits), max(1, math.ceil(T_max)), job.in_features), t)
    energy = {
        "ac": acs * add_pj,
        "accumulate": acc_updates * add_pj,
        "vector": vector_ops * t.op("mac_fp16"),
        "sram": sram_bytes * t.mem(cfg.sram),
        "hbm": hbm_bytes * t.mem(cfg.hbm),
    }
    return JobCost(name=job.name, array_cycles=array, hbm_cycles=hbm_bytes / cfg.hbm_bandwidth * cfg.clock_hz,
                   vector_cycles=vector_ops / cfg.vector_lanes, hbm_bytes=hbm_bytes, sram_bytes=sram_bytes, acs=acs,
                   acc_updates=acc_updates, vector_ops=vector_ops, dense_macs=job.dense_macs, energy_pj=energy)


# ----------------------------------------------------------------------------------------------------------------
# phases and a whole request

@dataclass
class PhaseResult:
    """One phase (prefill, or all decode steps): time, energy by component (J), traffic and counts."""

    name: str
    seconds: float
    energy_j: dict[str, float]
    hbm_bytes: float
    acs: float
    dense_macs: float
    tokens: int
    jobs: list[JobCost] = field(default_factory=list)

    @property
    def chip_energy_j(self) -> float:
        return sum(v for k, v in self.energy_j.items() if k != "hbm")

    @property
    def total_energy_j(self) -> float:
        return sum(self.energy_j.values())

    @property
    def chip_power_w(self) -> float:
        return self.chip_energy_j / self.seconds

    @property
    def system_power_w(self) -> float:
        return self.total_energy_j / self.seconds

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


def run_phase(name: str, jobs: Sequence[MatmulJob], cfg: AcceleratorConfig, tokens: int,
              extra_hbm_bytes: float = 0.0) -> PhaseResult:
    """Run jobs one after another (layer order); ``extra_hbm_bytes`` (KV-cache writes) overlap with compute."""
    costs = [job_cost(j, cfg) for j in jobs]
    cycles = sum(c.cycles for c in costs)
    hbm = sum(c.hbm_bytes for c in costs) + extra_hbm_bytes
    cycles = max(cycles, hbm / cfg.hbm_bandwidth * cfg.clock_hz)
    seconds = cycles / cfg.clock_hz
    energy = {k: 0.0 for k in ("ac", "accumulate", "vector", "sram", "hbm")}
    for c in costs:
        for k, v in c.energy_pj.items():
            energy[k] += v * 1e-12
    energy["hbm"] += extra_hbm_bytes * cfg.energy_table.mem(cfg.hbm) * 1e-12
    energy["static"] = cfg.static_power_w * seconds
    return PhaseResult(name=name, seconds=seconds, energy_j=energy, hbm_bytes=hbm, acs=sum(c.acs for c in costs),
                       dense_macs=sum(c.dense_macs for c in costs), tokens=tokens, jobs=costs)


def _merge(name: str, parts: Sequence[PhaseResult], tokens: int) -> PhaseResult:
    energy: dict[str, float] = {}
    for p in parts:
        for k, v in p.energy_j.items():
            energy[k] = energy.get(k, 0.0) + v
    return PhaseResult(name=name, seconds=sum(p.seconds for p in parts), energy_j=energy,
                       hbm_bytes=sum(p.hbm_bytes for p in parts), acs=sum(p.acs for p in parts),
                       dense_macs=sum(p.dense_macs for p in parts), tokens=tokens,
                       jobs=[j for p in parts for j in p.jobs])


@dataclass
class AcceleratorResult(PrefillDecodeRates):
    """Prefill and decode of one batch-1 request."""

    prefill: PhaseResult
    decode: PhaseResult


def run_accelerator(w: Workload, cfg: AcceleratorConfig) -> AcceleratorResult:
    """Prefill the prompt, then generate ``w.output_tokens`` tokens one by one with a growing KV cache."""
    prefill = run_phase("prefill", prefill_jobs(w), cfg, tokens=w.prompt_tokens,
                        extra_hbm_bytes=kv_cache_bytes(w, w.prompt_tokens))
    steps = [run_phase(f"decode[{i}]", decode_jobs(w, w.prompt_tokens + i + 1), cfg, tokens=1,
                       extra_hbm_bytes=kv_cache_bytes(w, 1)) for i in range(w.output_tokens)]
    return AcceleratorResult(prefill=prefill, decode=_merge("decode", steps, tokens=w.output_tokens))
