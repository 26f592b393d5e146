"""Everything the demo writes into its run folder, in one place: ``results.json``, the plots, ``report.html``.

One function (:func:`publish`) so that a run-folder writer (locking, atomic replacement) can take the demo's
outputs over in one spot. The recipe cache (``cache/``) is written by :mod:`spikemllm.report.recipe`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..msts.budget import REFERENCE_CALIB, UNIT
from ..msts.plots import plot_med
from ..msts.result import MEDResult, write_json
from .energy import OPTIONS
from .html import Section, write_report
from .measure import SettingResult
from .plots import plot_example, plot_firing, plot_scores, plot_timesteps
from .tables import energy_table, results_table

SCORE_NOTE = ("Scores: TextVQA/DocVQA/ScienceQA in %, OCRBench on its /1000 scale, MME as the sum of acc+acc+ over "
              "subtasks; avg % is the mean of normalised scores.")


def publish(out: Path, results: Sequence[SettingResult], examples: Sequence[Any], med_result: MEDResult,
            plans: dict[str, dict[str, dict[str, int]]], meta: dict[str, Any]) -> dict[str, Any]:
    """Write the run folder; returns the paths and the Markdown table (for the terminal)."""
    from ..bench.example import BENCHMARKS

    rows = [r.to_dict() for r in results]
    tasks = [t for t in BENCHMARKS if t in rows[0]["tasks"]]
    table = results_table(rows, tasks)
    write_json(out / "results.json", {"settings": rows, "med": med_result.to_dict(), "plans": plans, "meta": meta})
    ex = examples[0]
    answers = {r["name"]: next((x["prediction"] for x in r["records"] if x["uid"] == ex.uid), "") for r in rows}
    present = {g: {m: med_result.macs.get(g, {}).get(m, 0) > 0 for m in ("vision", "text")}
               for g in med_result.groups()}
    img = {
        "scores": plot_scores(rows, tasks, out)[0],
        "firing": plot_firing(rows, out)[0],
        "example": plot_example(ex.image, ex.question, answers, ex.answers, out)[0],
        "med": plot_med(med_result, out / "med", title="MED: cross-layer similarity cos(h_l, h_l+1) per modality "
                                                       f"({REFERENCE_CALIB})")[0],
        "timesteps": plot_timesteps(plans, present, out)[0],
    }
    n_per_task = len(examples) // max(len(tasks), 1)
    fp = rows[0]["average"]
    notes = [f"{r['name']}: {r['note']}" for r in rows if r.get("note")]
    sections = [
        Section("Results", paragraphs=[
            f"{len(examples)} held-out items of the mini-benchmark ({n_per_task} per task, test split); FP32 scores "
            f"{fp:.2f} % on average. Every spiking row computes the quantized model's integers exactly (TC-LIF "
            "bit-planes or IF rate coding); 4-bit weights throughout.",
            f"budget (v/t): {UNIT} on {REFERENCE_CALIB} (train split) -- the unit `spikemllm med` allocates in and "
            "`spikemllm eval` reports; in brackets the vision-token and text-token averages. The recipe's MED and "
            "search rows are allocated at the hand split's budget and never exceed it.",
            SCORE_NOTE], tables=[table], images=[img["scores"]]),
        Section("MED and the chosen timesteps", paragraphs=[
            "Cross-layer similarity cos(h_l, h_l+1) of vision and text tokens through every block (left: LM, middle: "
            "vision tower) and their difference per LM block (MED). A block that barely changes a modality's "
            "states can take fewer timesteps for it.",
            "Below: Tv and Tt per block for the hand split and the MED-guided and measured (search) allocations at "
            "the same budget. 'rest' is every converted linear outside the blocks (the projector); vision-tower "
            "blocks and the projector see only vision tokens."], images=[img["med"], img["timesteps"]]),
        Section("Energy", paragraphs=[
            f"pJ per language-model token ({OPTIONS.table} table: Horowitz ISSCC 2014 for operations; HBM2 for weights "
            "and KV cache, 32 KB SRAM for activations), priced from each run's exact counts. FP16 prices the same "
            "tokens on a dense FP16 model (MACs at an FP16 multiply-add, 16-bit weights); spiking prices the run's "
            "accumulates (0.9 pJ each) and its 4-bit weights and integer codes. Memory traffic is shown apart: "
            "counting operations alone overstates what spikes save, and for a large model read at batch 1 the "
            "weight traffic dominates (see `spikemllm energy`)."],
            tables=[energy_table(rows)]),
        Section("Firing rate per layer", paragraphs=[
            "Spikes per neuron and timestep in every spiking linear, in model order; the bands mark the vision "
            "tower, the projector and the language model."], images=[img["firing"]]),
        Section("Example", images=[img["example"]]),
    ]
    if notes:
        sections.append(Section("Notes", paragraphs=notes))
    report = write_report(out / "report.html", "spikemllm demo: bundled VLM, FP vs spiking", sections, meta)
    return {"report": report, "results": out / "results.json", "table": table.to_markdown(), "images": img}
