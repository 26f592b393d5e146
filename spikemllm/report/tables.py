"""The demo's tables (results, energy), built once and shown as Markdown on the terminal and HTML in the report."""
from __future__ import annotations

from typing import Any, Sequence

from .html import Table

COUNT_SCALES = ("/1000", "sum of subtasks")


def _score(x: dict[str, Any] | None) -> str:
    if x is None:
        return "-"
    return f"{x['score']:.0f}" if x.get("unit") in COUNT_SCALES else f"{x['score']:.2f}"


def budget_cell(b: dict[str, Any] | None) -> str:
    """``3.437 (3.00/4.00)``: the budget and its vision/text parts, in the one unit."""
    return "-" if not b else f"{b['value']:.3f} ({b['vision']:.2f}/{b['text']:.2f})"


def results_table(rows: Sequence[dict[str, Any]], tasks: Sequence[str]) -> Table:
    """Per-task scores, average, gap to the first (FP) row, method, allocation, budget and the run's counts."""
    fp = rows[0]["average"]
    head = ["setting", "method", "allocation", "budget (v/t)", *tasks, "avg %", "gap to FP", "firing rate",
            "ACs (M)", "MACs (M)"]
    out, groups, last = [], {}, None
    for i, r in enumerate(rows):
        section = "paper's recipe: " + r["method"] if r.get("recipe") else "plain baseline (RTN weights)"
        if r.get("spiking") or r.get("config"):
            if section != last:
                groups[i] = section
                last = section
        c = r.get("cost") or {}
        cells = [r["name"], r.get("method", "-"), r.get("allocation", "-"), budget_cell(r.get("budget"))]
        cells += [_score(r["tasks"].get(k)) for k in tasks]
        cells += [f"{r['average']:.2f}", f"{r['average'] - fp:+.2f}"]
        cells += [f"{c['firing_rate']:.3f}", f"{c['acs'] / 1e6:.1f}", f"{c['macs'] / 1e6:.1f}"] if c else ["-"] * 3
        out.append(cells)
    return Table(head, out, numeric=range(3, len(head)), groups=groups)


def energy_table(rows: Sequence[dict[str, Any]]) -> Table:
    """pJ per LM token: FP16 dense vs spiking, compute and memory traffic in separate columns."""
    head = ["setting", "FP16 compute pJ", "spiking compute pJ", "compute ratio", "FP16 memory pJ",
            "spiking memory pJ", "FP16 total pJ", "spiking total pJ", "total ratio"]
    out = []
    for r in rows:
        e = r.get("energy") or {}
        if not e:
            continue
        fc, fm, sc, sm = e["fp16_compute_pj"], e["fp16_memory_pj"], e["spike_compute_pj"], e["spike_memory_pj"]
        out.append([r["name"], f"{fc:,.0f}", f"{sc:,.0f}", f"{fc / sc:.2f}x" if sc else "-", f"{fm:,.0f}",
                    f"{sm:,.0f}", f"{fc + fm:,.0f}", f"{sc + sm:,.0f}", f"{(fc + fm) / (sc + sm):.2f}x"])
    return Table(head, out, numeric=range(1, len(head)))
