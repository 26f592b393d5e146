"""How the accelerator-versus-GPU ratios move with the timesteps (Tv/Tt) and with the firing rate.

Why a sweep: the headline ratios hold for one operating point; timesteps set the array's cycles (throughput),
the firing rate sets how many adders switch (energy). The plot makes both dependencies visible.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .accel_model import AcceleratorConfig
from .gpu import GPUSpec
from .report import compare
from .workload import Workload

__all__ = ["sweep", "plot_sweeps", "DEFAULT_T_PAIRS", "DEFAULT_RATES"]

DEFAULT_T_PAIRS: tuple[tuple[int, int], ...] = ((1, 2), (2, 3), (3, 4), (4, 4), (4, 5), (5, 6), (6, 7), (7, 8))
DEFAULT_RATES: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6)


def _point(w: Workload, cfg: AcceleratorConfig, spec: GPUSpec, **gpu: Any) -> dict[str, float]:
    c = compare(w, cfg, spec, **gpu)
    return {"tv": w.tv, "tt": w.tt, "firing_rate": w.firing_rate_text,
            "accel_tok_s": c.accel.decode_tokens_per_s, "gpu_tok_s": c.gpu.decode_tokens_per_s,
            "accel_chip_w": c.accel.decode.chip_power_w, "accel_system_w": c.accel.decode.system_power_w,
            "gpu_w": c.gpu.power_w, "throughput": c.throughput_ratio, "end_to_end": c.end_to_end_ratio,
            "power_chip": c.power_ratio(False), "power_hbm": c.power_ratio(True),
            "energy_chip": c.energy_per_token_ratio(False), "energy_hbm": c.energy_per_token_ratio(True)}


def sweep(w: Workload, cfg: AcceleratorConfig, spec: GPUSpec, *, t_pairs: Sequence[tuple[int, int]] = DEFAULT_T_PAIRS,
          rates: Sequence[float] = DEFAULT_RATES, **gpu: Any) -> tuple[list[dict], list[dict]]:
    """Rows over (Tv, Tt) at the workload's firing rates, and over firing rate (both modalities) at its Tv/Tt."""
    by_t = [_point(w.with_(tv=tv, tt=tt), cfg, spec, **gpu) for tv, tt in t_pairs]
    by_rate = [_point(w.with_(firing_rate_vision=r, firing_rate_text=r), cfg, spec, **gpu) for r in rates]
    return by_t, by_rate


_SERIES = (("throughput", "throughput (decode tok/s)"), ("end_to_end", "throughput incl. prefill"),
           ("power_chip", "power, chip only"), ("power_hbm", "power, with HBM"),
           ("energy_hbm", "energy/token, with HBM"))


def plot_sweeps(by_t: list[dict], by_rate: list[dict], out_prefix: str | Path, title: str = "") -> list[Path]:
    """Write ``<out_prefix>.png`` and ``.svg``: ratios (GPU / accelerator costs, higher favours the accelerator)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    xs = list(range(len(by_t)))
    for key, label in _SERIES:
        axes[0].plot(xs, [r[key] for r in by_t], marker="o", label=label)
        axes[1].plot([r["firing_rate"] for r in by_rate], [r[key] for r in by_rate], marker="o", label=label)
    axes[0].set_xticks(xs, [f"{r['tv']:g}/{r['tt']:g}" for r in by_t])
    axes[0].set_xlabel("timesteps Tv/Tt")
    axes[1].set_xlabel("firing rate (vision = text)")
    axes[0].set_ylabel("accelerator advantage over GPU (x)")
    for ax in axes:
        ax.set_yscale("log")
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=8, loc="best")
    fig.suptitle(title or "Spike accelerator vs FP16 GPU, batch 1")
    fig.tight_layout()
    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = [out_prefix.with_suffix(".png"), out_prefix.with_suffix(".svg")]
    for p in paths:
        fig.savefig(p, dpi=120)
    plt.close(fig)
    return paths
