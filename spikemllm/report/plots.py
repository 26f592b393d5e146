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
    """Grouped bars: normalised score (%) per task, one bar per setting."""
    fig, ax = plt.subplots(figsize=(9, 3.8))
    n = len(rows)
    width = 0.8 / max(n, 1)
    for i, r in enumerate(rows):
        xs = [j + i * width for j in range(len(tasks) + 1)]
        ys = [r["tasks"][t]["normalized"] if t in r["tasks"] else 0 for t in tasks] + [r["average"]]
        ax.bar(xs, ys, width, label=r["name"])
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(tasks) + 1)], [*tasks, "average"])
    ax.set_ylabel("score (% of max)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    ax.set_title("Mini-benchmark scores per setting")
    return _save(fig, out, "scores")


def plot_firing(rows: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    """Firing rate per spiking layer, one line per spiking setting."""
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for r in rows:
        layers = r.get("layers") or []
        if layers and r.get("spiking"):
            ax.plot(range(len(layers)), [x["firing_rate"] for x in layers], marker=".", lw=1, label=r["name"])
    ax.set_xlabel("spiking layer (model order: vision tower, projector, language model)")
    ax.set_ylabel("firing rate (spikes / neuron-step)")
    ax.set_title("Firing rate per layer")
    ax.legend(fontsize=7)
    return _save(fig, out, "firing_rate")


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
