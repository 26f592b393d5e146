"""Plots of a demo or eval run (matplotlib, Agg backend; PNG and SVG)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _save(fig: Any, out: Path, stem: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.svg"]
    for p in paths:
        fig.savefig(p, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return paths


def plot_scores(rows: Sequence[dict[str, Any]], tasks: Sequence[str], out: Path) -> list[Path]:
    """Grouped bars: normalised score (%) per task, one bar per setting (recipe rows hatched)."""
    fig, ax = plt.subplots(figsize=(10, 4))
    n = len(rows)
    width = 0.8 / max(n, 1)
    for i, r in enumerate(rows):
        xs = [j + i * width for j in range(len(tasks) + 1)]
        ys = [r["tasks"][t]["normalized"] if t in r["tasks"] else 0 for t in tasks] + [r["average"]]
        ax.bar(xs, ys, width, label=r["name"], color=plt.cm.tab20(i % 20), hatch="///" if r.get("recipe") else None,
               edgecolor="white" if r.get("recipe") else None, linewidth=0)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(tasks) + 1)], [*tasks, "average"])
    ax.set_ylabel("score (% of max)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    ax.set_title("Mini-benchmark scores per setting")
    return _save(fig, out, "scores")


REGION_COLORS = {"vision": "#dbe9f6", "projector": "#fde5c8", "lm": "#e3f1dc", "rest": "#fde5c8"}
REGION_NAMES = {"vision": "vision tower", "projector": "projector", "lm": "language model", "rest": "projector (rest)"}


def _spans(labels: Sequence[str]) -> list[tuple[str, int, int]]:
    """Runs of equal consecutive labels: (label, first index, last index)."""
    out: list[tuple[str, int, int]] = []
    for i, lab in enumerate(labels):
        if out and out[-1][0] == lab:
            out[-1] = (lab, out[-1][1], i)
        else:
            out.append((lab, i, i))
    return out


def shade_regions(ax: Any, labels: Sequence[str]) -> None:
    """Background bands with the region's name on top, one per run of equal ``labels`` along x."""
    for lab, a, b in _spans(labels):
        if not lab:
            continue
        ax.axvspan(a - 0.5, b + 0.5, color=REGION_COLORS.get(lab, "#eeeeee"), alpha=0.8, zorder=0, lw=0)
        ax.text((a + b) / 2, 1.01, REGION_NAMES.get(lab, lab), transform=ax.get_xaxis_transform(), ha="center",
                va="bottom", fontsize=8)


def plot_firing(rows: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    """Firing rate per spiking layer, one line per spiking setting, with the vision / projector / LM regions
    marked (layers in model order: the order the tokens flow)."""
    fig, ax = plt.subplots(figsize=(10, 3.8))
    regions: list[str] = []
    for r in rows:
        layers = r.get("layers") or []
        if layers and r.get("spiking"):
            regions = regions or [x.get("region", "") for x in layers]
            ax.plot(range(len(layers)), [x["firing_rate"] for x in layers], marker=".", lw=1, label=r["name"])
    shade_regions(ax, regions)
    ax.set_xlim(-0.5, max(len(regions), 1) - 0.5)
    ax.set_xlabel("spiking linear layer (model order)")
    ax.set_ylabel("firing rate (spikes / neuron-step)")
    ax.set_title("Firing rate per layer", pad=16)
    ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    return _save(fig, out, "firing_rate")


def plot_timesteps(plans: dict[str, dict[str, dict[str, int]]], present: dict[str, dict[str, bool]], out: Path,
                   stem: str = "timesteps") -> list[Path]:
    """Tv and Tt per group (token-flow order) for each named plan: the allocation as a plot.

    ``present[group][modality]`` says whether the group sees that modality (vision-tower blocks and the
    projector see no text, so their Tt is not drawn).
    """
    from ..msts.units import group_sort_key

    groups = sorted({g for p in plans.values() for g in p}, key=group_sort_key)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    styles = ["o-", "s--", "^-.", "d:", "v-"]
    for ax, m in zip(axes, ("vision", "text")):
        for k, (name, p) in enumerate(plans.items()):
            xs = [i for i, g in enumerate(groups) if present.get(g, {}).get(m) and g in p]
            ax.plot(xs, [p[groups[i]][m] for i in xs], styles[k % len(styles)], label=name, lw=1.2, ms=5,
                    alpha=0.85)
        shade_regions(ax, [g.split(".")[0] for g in groups])
        ax.set_xticks(range(len(groups)), groups, rotation=45, fontsize=8)
        ax.set_title(f"T for {m} tokens", pad=16)
        ax.set_xlim(-0.5, len(groups) - 0.5)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("timesteps")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, stem)


def plot_example(image: Any, question: str, answers: dict[str, str], gold: Sequence[str], out: Path,
                 stem: str = "example") -> list[Path]:
    """The example image with its question, the gold answer and each setting's answer."""
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(9, 3.2), gridspec_kw={"width_ratios": [1, 1.6]})
    a0.imshow(image)
    a0.axis("off")
    a1.axis("off")
    lines = [f"Q: {question}", f"gold: {' | '.join(gold[:3])}", ""] + [f"{k}: {v!r}" for k, v in answers.items()]
    a1.text(0, 1, "\n".join(lines), va="top", family="monospace", fontsize=8, wrap=True)
    return _save(fig, out, stem)
