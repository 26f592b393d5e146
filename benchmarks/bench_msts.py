"""MSTS allocation against uniform T and the paper's hand setting, at equal average cost.

    .venv/bin/python benchmarks/bench_msts.py --part tiny            # every tiny family, KL to FP logits
    .venv/bin/python benchmarks/bench_msts.py --part bundled         # bundled VLM, mini-benchmark score

For each budget B in 3, 3.5, 4 (TC-LIF):

* ``uniform``: one T everywhere, T = floor(B) (3.5 has no uniform setting; T = 3 stays under it);
* ``hand``: the paper's split, text one or two steps above vision with the paper's arithmetic mean
  (Tv + Tt) / 2 = B: 2/4, 3/4, 3/5;
* ``med`` (cosine curves only) and ``search`` (measured, :func:`spikemllm.msts.search`) at ``= hand``:
  allocated with the budget set to the hand setting's *actual* cost, so the comparison with the hand
  setting is at equal (or lower) average cost;
* ``med`` / ``search`` at ``= B``: allocated at the budget itself (equal cost to uniform at integer B).

Cost is the MAC-weighted average timesteps (token counts x layer cost, measured on the calibration set);
``avg T (equal)`` is the paper's unweighted arithmetic for comparison. Scores are on held-out data: the
mini-benchmark test split for the bundled model (average normalised score of the harness, and the KL of
next-token distributions on the same items' gold answers, teacher-forced); for the tiny random models, other random inputs of the
same layout, scored by KL(FP || spiking) of next-token distributions and top-1 agreement with FP.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import spikemllm  # noqa: E402
from spikemllm.models import VLM_FAMILIES  # noqa: E402
from spikemllm.msts import average_timesteps, kl_divergence, log_probs, med, plan, search  # noqa: E402
from spikemllm.msts.sensitivity import top1_agreement  # noqa: E402

BUDGETS = (3.0, 3.5, 4.0)
HAND = {3.0: (2, 4), 3.5: (3, 4), 4.0: (3, 5)}
LEVELS = list(range(1, 7))


def settings(result: Any, base: spikemllm.SpikeConfig, budget: float, fp: Any, calib: list[dict[str, Any]]
             ) -> list[tuple[str, spikemllm.SpikeConfig]]:
    """The six settings compared at one budget (see module docstring). ``search`` is the measured search
    (:func:`spikemllm.msts.search`) seeded by ``result``'s curves, on the same calibration batches."""
    tv, tt = HAND[budget]
    hand = base.replace(timesteps={"vision": tv, "text": tt})
    hand_cost = average_timesteps(result, hand)
    out = [(f"uniform T={math.floor(budget)}", base.replace(timesteps=math.floor(budget))),
           (f"hand Tv/Tt={tv}/{tt}", hand)]
    for at, b in (("= hand", hand_cost), ("= B", budget)):
        out.append((f"med @ cost {at}", plan(result, b, "med").to_config(base)))
        out.append((f"search @ cost {at}", search(fp, calib, b, result=result)[0].to_config(base)))
    return out


def perturbed(inputs: dict[str, Any], mm: Any, seed: int, vocab: int = 80) -> dict[str, Any]:
    """Another input of the same layout: random text tokens (image tokens kept), random pixels."""
    g = torch.Generator().manual_seed(seed)
    out = dict(inputs)
    vis = mm.vision_mask(inputs)
    ids = inputs["input_ids"]
    keep = vis if vis is not None else torch.zeros_like(ids, dtype=torch.bool)
    out["input_ids"] = torch.where(keep, ids, torch.randint(3, vocab, ids.shape, generator=g))
    for k, v in inputs.items():
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            out[k] = torch.randn(v.shape, generator=g).to(v.dtype)
    return out


def tiny_part(families: list[str]) -> list[dict[str, Any]]:
    rows = []
    base = spikemllm.SpikeConfig()
    for fam in families:
        t0 = time.time()
        fp, inputs = spikemllm.tiny_model(fam)
        mm = spikemllm.describe(fp)
        calib = [perturbed(inputs, mm, s) for s in range(4)]
        held = [perturbed(inputs, mm, 100 + s) for s in range(4)]
        result = med(fp, calib, config=base, levels=LEVELS)
        fp_lp = log_probs(fp, mm, held)
        cache: dict[str, dict[str, Any]] = {}
        floor = [(None, "floor T=8", base.replace(timesteps=8))]  # what W4 weights alone cost
        for budget, name, cfg in floor + [(b, n, c) for b in BUDGETS for n, c in settings(result, base, b, fp, calib)]:
            key = cfg.to_json()
            if key not in cache:
                spk = spikemllm.convert(copy.deepcopy(fp), cfg, progress=False)
                lp = log_probs(spk, mm, held)
                cache[key] = {"kl": kl_divergence(fp_lp, lp), "top1": top1_agreement(fp_lp, lp)}
            rows.append({"model": fam, "budget": budget, "setting": name, **cache[key],
                         "cost": average_timesteps(result, cfg), "avg_t_equal": average_timesteps(result, cfg, "equal")})
        print(f"[bench_msts] {fam}: {time.time() - t0:.1f}s", file=sys.stderr, flush=True)
    return rows


def bundled_part(n_calib: int, n_eval: int, batch_size: int, folder: str | None = None) -> list[dict[str, Any]]:
    from spikemllm.bench import evaluate, minibench
    from spikemllm.msts.calib import calibration_from_examples, minibench_calibration
    from spikemllm.zoo import load_bundled

    fp, proc = load_bundled(folder)
    base = spikemllm.SpikeConfig()
    t0 = time.time()
    calib = minibench_calibration(proc, n=n_calib, seed=0, batch_size=5)
    result = med(fp, calib, config=base, levels=LEVELS)
    result.save(Path(os.environ.get("MSTS_OUT", "/tmp/msts_bench")) / "bundled_med.json")
    print(f"[bench_msts] bundled MED + curves: {time.time() - t0:.1f}s", file=sys.stderr, flush=True)
    examples = minibench.build("test", n_per_task=n_eval, seed=0)
    fp_res = evaluate(fp, proc, examples, batch_size=batch_size, progress=False)
    mm = spikemllm.describe(fp)
    held = calibration_from_examples(proc, examples, batch_size=batch_size)  # teacher-forced gold answers
    fp_lp = log_probs(fp, mm, held)
    rows = [{"model": "bundled", "budget": None, "setting": "FP", "score": fp_res["average"], "gap": 0.0, "kl": 0.0,
             "tasks": {k: v["normalized"] for k, v in fp_res["tasks"].items()}, "cost": None, "avg_t_equal": None}]
    cache: dict[str, dict[str, Any]] = {}
    for budget in BUDGETS:
        for name, cfg in settings(result, base, budget, fp, calib):
            key = cfg.to_json()
            if key not in cache:
                spk = spikemllm.convert(copy.deepcopy(fp), cfg, progress=False)
                res = evaluate(spk, proc, examples, batch_size=batch_size, progress=False)
                cache[key] = {"score": res["average"], "gap": fp_res["average"] - res["average"],
                              "kl": kl_divergence(fp_lp, log_probs(spk, mm, held)),
                              "tasks": {k: v["normalized"] for k, v in res["tasks"].items()},
                              "timesteps": cfg.layer_timesteps, "global": cfg.timesteps}
                print(f"[bench_msts] {budget} {name}: {res['average']:.2f} ({time.time() - t0:.0f}s)",
                      file=sys.stderr, flush=True)
            rows.append({"model": "bundled", "budget": budget, "setting": name, **cache[key],
                         "cost": average_timesteps(result, cfg), "avg_t_equal": average_timesteps(result, cfg, "equal")})
    return rows


def _kind(setting: str) -> str:
    """'uniform', 'hand', 'med@hand', 'search@hand', 'med@B', 'search@B' from a setting's name."""
    head = setting.split(" ")[0]
    if head in ("uniform", "hand"):
        return head
    return head + ("@hand" if "= hand" in setting else "@B")


KINDS = ("uniform", "hand", "med@hand", "search@hand", "med@B", "search@B")


def markdown(rows: list[dict[str, Any]]) -> str:
    """Tiny models: one line per model and budget, KL(FP || spiking) per setting with its cost.
    Bundled model: one line per setting, per-task scores, average, gap to FP and held-out KL."""
    out = []
    tiny = [r for r in rows if r["model"] != "bundled"]
    if tiny:
        out += ["| model | W4 floor (T=8) | B | " + " | ".join(KINDS) + " |", "|---|---|---|" + "---|" * len(KINDS)]
        for model in dict.fromkeys(r["model"] for r in tiny):
            floor = next(r["kl"] for r in tiny if r["model"] == model and r["budget"] is None)
            for b in BUDGETS:
                cell = {_kind(r["setting"]): r for r in tiny if r["model"] == model and r["budget"] == b}
                out.append(f"| {model} | {floor * 1e4:.2f} | {b:g} | " + " | ".join(
                    f"{cell[k]['kl'] * 1e4:.2f} ({cell[k]['cost']:.2f})" for k in KINDS) + " |")
    bundled = [r for r in rows if r["model"] == "bundled"]
    if bundled:
        tasks = list(bundled[0]["tasks"])
        out += ["", "| B | setting | cost (MAC-avg T) | avg T (equal) | " + " | ".join(tasks)
                + " | avg % | gap to FP | KL(FP‖spk) answers |", "|---|---|---|---|" + "---|" * (len(tasks) + 3)]
        for r in bundled:
            b = "-" if r["budget"] is None else f"{r['budget']:g}"
            c = "-" if r["cost"] is None else f"{r['cost']:.3f}"
            e = "-" if r["avg_t_equal"] is None else f"{r['avg_t_equal']:.3f}"
            out.append(f"| {b} | {r['setting']} | {c} | {e} | " + " | ".join(f"{r['tasks'][t]:.1f}" for t in tasks)
                       + f" | {r['score']:.2f} | {r['gap']:+.2f} | {r['kl']:.2e} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=("tiny", "bundled", "all"), default="all")
    ap.add_argument("--families", default=",".join(VLM_FAMILIES))
    ap.add_argument("--n-calib", type=int, default=20, help="bundled: calibration items (train split)")
    ap.add_argument("--n-eval", type=int, default=20, help="bundled: held-out items per task (test split)")
    ap.add_argument("--batch-size", type=int, default=20)
    ap.add_argument("--bundled-dir", help="a folder saved like the bundled model (default: the shipped one)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the models are tiny)")
    ap.add_argument("--json", help="also write every row here")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)  # tiny matmuls: thread hand-offs cost more than they save
    t0 = time.time()
    rows: list[dict[str, Any]] = []
    if args.part in ("tiny", "all"):
        rows += tiny_part([f for f in args.families.split(",") if f])
    if args.part in ("bundled", "all"):
        rows += bundled_part(args.n_calib, args.n_eval, args.batch_size, args.bundled_dir)
    print(markdown(rows))
    print(f"\n[bench_msts] total {time.time() - t0:.0f}s", file=sys.stderr)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=1))

    return 0


if __name__ == "__main__":
    sys.exit(main())
