"""The accelerator-versus-GPU comparison for one workload, with every assumption printed.

Why three ratios: the paper reports a throughput ratio (393.7 / 43.5 = 9.06x) and a "power efficiency" that is
in fact the ratio of watts (184 / 7.13 = 25.8x). Energy per token (J/token, the ratio of tokens/s/W) is the
product of the two and is printed as well. Accelerator watts are given without HBM (the chip: logic, SRAM,
static; comparable to a synthesised-chip figure) and with HBM (the system), because at batch 1 HBM traffic is
most of the energy and leaving it out changes the answer by an order of magnitude.
"""
from __future__ import annotations

from dataclasses import dataclass

from .accel_model import AcceleratorConfig, AcceleratorResult, run_accelerator
from .gpu import (PAPER_A800_POWER_W, PAPER_A800_TOKENS_PER_S, PAPER_ACCEL_POWER_W, PAPER_ACCEL_TOKENS_PER_S,
                  GPUResult, GPUSpec, run_gpu)
from .workload import Workload

__all__ = ["Comparison", "compare", "format_comparison"]


@dataclass(frozen=True)
class Comparison:
    workload: Workload
    config: AcceleratorConfig
    accel: AcceleratorResult
    gpu: GPUResult

    @property
    def throughput_ratio(self) -> float:
        """Accelerator decode tokens/s over GPU decode tokens/s (batch 1)."""
        return self.accel.decode_tokens_per_s / self.gpu.decode_tokens_per_s

    @property
    def end_to_end_ratio(self) -> float:
        return self.accel.end_to_end_tokens_per_s / self.gpu.end_to_end_tokens_per_s

    def power_ratio(self, with_hbm: bool) -> float:
        """GPU watts over accelerator watts during decode (the paper's 'power efficiency')."""
        d = self.accel.decode
        return self.gpu.power_w / (d.system_power_w if with_hbm else d.chip_power_w)

    def energy_per_token_ratio(self, with_hbm: bool) -> float:
        """GPU joules per generated token over the accelerator's (= throughput ratio x power ratio)."""
        return self.throughput_ratio * self.power_ratio(with_hbm)


def compare(w: Workload, cfg: AcceleratorConfig, spec: GPUSpec, *, gpu_power_w: float | None = None,
            gpu_compute_efficiency: float = 1.0, gpu_bandwidth_efficiency: float = 1.0) -> Comparison:
    return Comparison(workload=w, config=cfg, accel=run_accelerator(w, cfg),
                      gpu=run_gpu(w, spec, power_w=gpu_power_w, compute_efficiency=gpu_compute_efficiency,
                                  bandwidth_efficiency=gpu_bandwidth_efficiency))


def _rows(title: str, rows: list[tuple[str, str]]) -> list[str]:
    width = max(len(k) for k, _ in rows)
    return [title] + [f"  {k.ljust(width)}  {v}" for k, v in rows]


def format_comparison(c: Comparison, gpu_efficiency_note: str = "") -> str:
    """A plain-text report: assumptions, both sides' tokens/s and watts, the ratios, and the paper's figures."""
    a, g, w = c.accel, c.gpu, c.workload
    d, p = a.decode, a.prefill
    e_d = d.energy_j
    lines: list[str] = []
    lines += _rows("Workload (batch 1)", w.assumptions())
    lines.append("")
    lines += _rows("Accelerator assumptions", c.config.assumptions())
    lines.append("")
    lines += _rows("GPU assumptions", [
        ("GPU", g.spec.name), ("spec", g.spec.source),
        ("model", "FP16 weights and KV cache, roofline max(FLOPs/peak, bytes/bandwidth) per phase"),
        ("efficiency", gpu_efficiency_note or "1.0 (ideal roofline: an upper bound on GPU speed)"),
        ("power", f"{g.power_w:g} W ({g.power_note})"),
    ])
    lines.append("")
    lines += _rows("Accelerator results", [
        ("prefill", f"{p.seconds * 1e3:.1f} ms for {p.tokens} prompt tokens ({p.tokens_per_s:.0f} tok/s), "
                    f"{p.chip_power_w:.2f} W chip, {p.system_power_w:.2f} W with HBM"),
        ("decode", f"{d.tokens_per_s:.1f} tok/s ({d.seconds / d.tokens * 1e3:.2f} ms/token)"),
        ("decode power, chip", f"{d.chip_power_w:.2f} W"),
        ("decode power, with HBM", f"{d.system_power_w:.2f} W"),
        ("decode energy/token", "  ".join(f"{k} {v / d.tokens * 1e3:.3f} mJ" for k, v in e_d.items())),
        ("decode HBM traffic", f"{d.hbm_bytes / d.tokens / 1e9:.3f} GB/token"),
        ("decode ACs/token", f"{d.acs / d.tokens:.3e} (dense MACs/token {d.dense_macs / d.tokens:.3e})"),
        ("end to end", f"{a.end_to_end_tokens_per_s:.1f} generated tok/s including prefill"),
    ])
    lines.append("")
    lines += _rows(f"GPU results ({g.spec.name}, FP16)", [
        ("prefill", f"{g.prefill.seconds * 1e3:.1f} ms ({g.prefill.bound}-bound)"),
        ("decode", f"{g.decode_tokens_per_s:.1f} tok/s ({g.decode.bound}-bound, "
                   f"{g.decode.bytes / g.decode.tokens / 1e9:.2f} GB/token)"),
        ("power", f"{g.power_w:g} W"),
        ("end to end", f"{g.end_to_end_tokens_per_s:.1f} generated tok/s including prefill"),
    ])
    lines.append("")
    lines += _rows("Ratios (accelerator vs GPU, decode)", [
        ("throughput", f"{c.throughput_ratio:.2f}x  (end to end {c.end_to_end_ratio:.2f}x)"),
        ("power (GPU W / accel W), chip", f"{c.power_ratio(False):.1f}x"),
        ("power (GPU W / accel W), with HBM", f"{c.power_ratio(True):.1f}x"),
        ("energy per token, chip", f"{c.energy_per_token_ratio(False):.1f}x"),
        ("energy per token, with HBM", f"{c.energy_per_token_ratio(True):.1f}x"),
    ])
    lines.append("")
    lines += _rows("Paper (Qwen2VL-7B, batch 1, A800 FP16; its accelerator config is not public)", [
        ("tokens/s", f"{PAPER_ACCEL_TOKENS_PER_S} vs {PAPER_A800_TOKENS_PER_S} "
                     f"({PAPER_ACCEL_TOKENS_PER_S / PAPER_A800_TOKENS_PER_S:.2f}x)"),
        ("watts", f"{PAPER_ACCEL_POWER_W} vs {PAPER_A800_POWER_W} ({PAPER_A800_POWER_W / PAPER_ACCEL_POWER_W:.1f}x)"),
        ("note", f"43.5 tok/s is {PAPER_A800_TOKENS_PER_S / g.decode_tokens_per_s:.0%} of this {g.spec.name} "
                 f"roofline" if g.spec.name.startswith("A800") else "the paper's GPU was an A800"),
    ])
    return "\n".join(lines)
