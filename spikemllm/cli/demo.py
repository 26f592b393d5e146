"""``spikemllm demo``: the main job. Six settings of the bundled VLM on the mini-benchmark, one table, a report.

Settings (the paper's comparison in small): FP32; W4A4 fake-quant (the quantized ANN); IF rate coding at the
4-bit setting (signed, T=7: the same integers as W4A4); TC-LIF uniform T=3 (A4) and T=4 (A5); MSTS Tv/Tt=3/4.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..config import SpikeConfig
from ..report.measure import Setting, SettingResult
from .options import add_seed, apply_seed


OUTPUTS = ("results.json", "report.html", "scores.png", "scores.svg", "firing_rate.png", "firing_rate.svg",
           "example.png", "example.svg")


def demo_settings() -> list[Setting]:
    w4 = dict(weight_bits=4, method="rtn")
    return [
        Setting("FP32", None, spiking=False),
        Setting("W4A4 fake-quant", SpikeConfig(coder="tc-lif", timesteps=3, **w4), mode="fakequant", spiking=False,
                note="the quantized ANN (float matmuls on dequantized values)"),
        Setting("IF T=7 (A4)", SpikeConfig(coder="if", timesteps=7, **w4),
                note="rate coding, signed ternary spikes; unsigned IF would need T=15"),
        Setting("TC-LIF T=3 (A4)", SpikeConfig(coder="tc-lif", timesteps=3, **w4)),
        Setting("TC-LIF T=4 (A5)", SpikeConfig(coder="tc-lif", timesteps=4, **w4)),
        Setting("MSTS Tv/Tt=3/4", SpikeConfig(coder="tc-lif", timesteps={"vision": 3, "text": 4}, **w4),
                note="the paper's headline setting"),
    ]


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="run the six-setting demo on the bundled model and write a report",
                       description=__doc__.splitlines()[0])
    p.add_argument("--model", default="bundled", help="'bundled' (default) or a local VLM folder")
    p.add_argument("--limit", type=int, default=None, help="items per task (default: the mini-benchmark demo size)")
    p.add_argument("--out", default="runs/demo", help="folder for results.json, plots and report.html (a previous "
                   "demo's outputs there are replaced whole when this run completes)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=12)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the bundled model is "
                   "tiny, and thread hand-offs cost more than they give, worse on a busy machine)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_seed(p, "the mini-benchmark's held-out items (0: the items the bundled model's scores refer to) and torch")
    return p


def table(results: list[SettingResult], tasks: list[str]) -> str:
    """Markdown table: per-task scores, average, gap to the first (FP) row, and the cost columns."""
    fp = results[0].result["average"]
    head = ["setting", *tasks, "avg %", "gap to FP", "avg T (v/t)", "firing rate", "ACs (M)", "MACs (M)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        t = r.result["tasks"]
        cells = [r.setting.name]
        for k in tasks:
            x = t.get(k)
            cells.append("-" if x is None else (f"{x['score']:.0f}" if x.get("unit") in ("/1000", "sum of subtasks")
                                                 else f"{x['score']:.2f}"))
        avg = r.result["average"]
        cells += [f"{avg:.2f}", f"{avg - fp:+.2f}"]
        c = r.cost
        if c:
            cells += [f"{c['avg_T']:.2f} ({c['avg_T_vision']:.1f}/{c['avg_T_text']:.1f})", f"{c['firing_rate']:.3f}",
                      f"{c['acs'] / 1e6:.1f}", f"{c['macs'] / 1e6:.1f}"]
        else:
            cells += ["-", "-", "-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..runfolder import RunFolder
    from .common import model_inputs

    t0 = time.time()
    apply_seed(args.seed)
    torch.set_num_threads(max(1, args.threads))
    # This run owns --out until it ends; its outputs replace the previous demo's only once all are written.
    with RunFolder(args.out, command="demo", config=vars(args), inputs=model_inputs(args.model), overwrite=True,
                   known_outputs=OUTPUTS) as run:
        _run(args, run.path, t0)
    out = Path(args.out)
    print(f"\n[spikemllm demo] wrote {out / 'report.html'} and {out / 'results.json'} in {time.time() - t0:.0f}s")
    return 0


def _run(args: argparse.Namespace, out: Path, t0: float) -> None:
    """The demo itself, writing every output into ``out`` (the run's staging folder)."""
    from ..bench import load_examples
    from ..bench.example import BENCHMARKS
    from ..bench.harness import evaluate
    from ..bench.runner import save_json
    from ..report.html import write_report
    from ..report.measure import run_setting
    from ..report.plots import plot_example, plot_firing, plot_scores
    from .common import load_model

    examples = load_examples(list(BENCHMARKS), "test", args.limit, seed=args.seed)
    print(f"[spikemllm demo] model={args.model}, {len(examples)} held-out items, {len(demo_settings())} settings",
          flush=True)
    results: list[SettingResult] = []
    for s in demo_settings():
        ts = time.time()
        r = run_setting(s, lambda: load_model(args.model),
                        lambda m, p: evaluate(m, p, examples, batch_size=args.batch_size,
                                              max_new_tokens=args.max_new_tokens, progress=not args.quiet,
                                              desc=s.name), progress=not args.quiet)
        results.append(r)
        print(f"[spikemllm demo] {s.name}: average {r.result['average']:.2f}% ({time.time() - ts:.0f}s)", flush=True)
    tasks = [t for t in BENCHMARKS if t in results[0].result["tasks"]]
    md = table(results, tasks)
    print()
    print(md)
    rows = [r.to_dict() for r in results]
    save_json({"settings": rows, "seconds": round(time.time() - t0, 1)}, out / "results.json")
    images = [plot_scores(rows, tasks, out)[0], plot_firing(rows, out)[0]]
    ex = examples[0]
    answers = {r["name"]: next((x["prediction"] for x in r["records"] if x["uid"] == ex.uid), "") for r in rows}
    images.append(plot_example(ex.image, ex.question, answers, ex.answers, out)[0])
    notes = [f"{r.setting.name}: {r.setting.note}" for r in results if r.setting.note]
    notes.append("Scores: TextVQA/DocVQA/ScienceQA in %, OCRBench on its /1000 scale, MME as the sum of acc+acc+ "
                 "over subtasks; avg % is the mean of normalised scores. avg T is weighted by each layer's MACs.")
    write_report(out / "report.html", "spikemllm demo: bundled VLM, FP vs spiking", md, images, notes,
                 {"model": args.model, "items": len(examples), "seconds": round(time.time() - t0, 1)})
