"""Plots of MED and of an allocation (matplotlib, Agg backend; each written as PNG and SVG).

* :func:`plot_med`: ``cos(h_l, h_{l+1})`` per block for vision and text tokens (LM and vision tower), and
  the discrepancy ``cos_vision - cos_text`` per LM block -- the curves MED is read from.
* :func:`plot_allocation`: the chosen timesteps as a heat map, groups (token-flow order) x modality, cells
  with no tokens of that modality left blank.
"""
from __future__ import annotations

from pathlib import Path

from .allocate import Allocation
from .result import MEDResult
from .units import MODALITIES, group_sort_key

_COLORS = {"vision": "#1f77b4", "text": "#d62728"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)  # never needs a display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, stem: str | Path) -> list[Path]:
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for p in paths:
        fig.savefig(p, dpi=150 if p.suffix == ".png" else None, bbox_inches="tight")
    return paths


def plot_med(result: MEDResult, stem: str | Path, title: str | None = None) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.svg`` with the MED curves; returns the two paths."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    kinds = [k for k in ("lm", "vision") if result.num_layers.get(k)]
    fig, axes = plt.subplots(1, len(kinds) + 1, figsize=(4.2 * (len(kinds) + 1), 3.4), squeeze=False)
    axes = axes[0]
    for ax, kind in zip(axes, kinds):
        for m in MODALITIES:
            ys = result.cosine_curve(kind, m)
            xs = [i for i, y in enumerate(ys) if y is not None]
            if xs:
                ax.plot(xs, [ys[i] for i in xs], marker="o", color=_COLORS[m], label=f"{m} tokens")
        ax.set_title("language model" if kind == "lm" else "vision tower")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("block l")
        ax.set_ylabel("cos(h_l, h_l+1)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax = axes[-1]
    med = result.med("lm")
    xs = [i for i, v in enumerate(med) if v is not None]
    ax.bar(xs, [med[i] for i in xs], color=["#d62728" if med[i] > 0 else "#1f77b4" for i in xs])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_title("MED (LM): cos_vision - cos_text")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("block l")
    ax.set_ylabel("> 0: text changes more")
    ax.grid(alpha=0.3)
    fig.suptitle(title or f"MED -- {result.family}")
    fig.tight_layout()
    paths = _save(fig, stem)
    plt.close(fig)
    return paths


def plot_allocation(alloc: Allocation, result: MEDResult, stem: str | Path, title: str | None = None) -> list[Path]:
    """Write ``<stem>.png`` / ``.svg``: timesteps per group (rows) and modality (columns)."""
    import numpy as np

    plt = _pyplot()
    groups = sorted(alloc.timesteps, key=group_sort_key)
    data = np.full((len(groups), len(MODALITIES)), np.nan)
    for i, g in enumerate(groups):
        for j, m in enumerate(MODALITIES):
            if result.macs.get(g, {}).get(m, 0) > 0:
                data[i, j] = alloc.timesteps[g][m]
    fig, ax = plt.subplots(figsize=(3.6, 0.42 * len(groups) + 1.6))
    finite = data[np.isfinite(data)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    im = ax.imshow(np.ma.masked_invalid(data), cmap="viridis", aspect="auto", vmin=vmin, vmax=max(vmax, vmin + 1))
    for i in range(len(groups)):
        for j in range(len(MODALITIES)):
            if np.isfinite(data[i, j]):
                ax.text(j, i, f"{int(data[i, j])}", ha="center", va="center",
                        color="white" if data[i, j] < (vmin + vmax) / 2 else "black", fontsize=9)
    ax.set_xticks(range(len(MODALITIES)), [f"T {m}" for m in MODALITIES])
    ax.set_yticks(range(len(groups)), groups)
    fig.colorbar(im, ax=ax, label="timesteps")
    ax.set_title(title or f"{alloc.strategy}: budget {alloc.budget:g}, cost {alloc.cost:.3f} ({alloc.weighting})",
                 fontsize=9)
    fig.tight_layout()
    paths = _save(fig, stem)
    plt.close(fig)
    return paths
