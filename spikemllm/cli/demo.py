"""``spikemllm demo``: the main job. The bundled VLM on the mini-benchmark: FP32, a plain RTN baseline and the
paper's recipe at uniform, hand, MED and search timesteps; one table, a report.

Rows (every spiking row: TC-LIF or IF spikes, 4-bit weights):

* plain baseline, RTN weights: W4A4 fake-quant (the quantized ANN), IF rate coding T=7 (the same integers),
  TC-LIF uniform T=3 (A4) and T=4 (A5), the paper's hand split Tv/Tt = 3/4;
* the paper's recipe (:data:`spikemllm.report.recipe.RECIPE`: rotation + GPTQ, calibrated on train-split
  items, never the evaluated ones): uniform T=3, uniform T=4, hand 3/4, and the MED-guided and measured
  (search) allocations at the hand split's budget.

Budgets are in the one unit (:mod:`spikemllm.msts.budget`): MAC-weighted average timesteps over the tokens
of the reference calibration set. The recipe's calibrated weights and the search's allocation are cached in
``<out>/cache/``; a second run reuses them and reproduces the rows bit for bit.
"""
from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path
from typing import Any

from ..config import SpikeConfig
from ..report.measure import Setting, SettingResult
from .options import add_placement, add_seed, apply_seed, placement_of

RTN = "RTN"
RECIPE_NAME = "rotation+GPTQ"
SEARCH_CACHE_VERSION = 2  # bump when the search changes what it returns

#: Files a demo run writes at its top level (a folder from before run folders had markers is recognised by them).
OUTPUTS = ("results.json", "report.html", "scores.png", "scores.svg", "firing_rate.png", "firing_rate.svg",
           "example.png", "example.svg", "med.png", "med.svg", "timesteps.png", "timesteps.svg", "cache")


def baseline_settings() -> list[Setting]:
    """The plain rows: FP32 and RTN weights at the classic settings."""
    w4 = dict(weight_bits=4, method="rtn")
    rtn = dict(method=RTN)
    return [
        Setting("FP32", None, spiking=False),
        Setting("W4A4 fake-quant", SpikeConfig(coder="tc-lif", timesteps=3, **w4), mode="fakequant", spiking=False,
                note="the quantized ANN (float matmuls on dequantized values)", allocation="uniform", **rtn),
        Setting("IF T=7 (A4)", SpikeConfig(coder="if", timesteps=7, **w4), allocation="uniform",
                note="rate coding, signed ternary spikes; unsigned IF would need T=15", **rtn),
        Setting("TC-LIF T=3 (A4)", SpikeConfig(coder="tc-lif", timesteps=3, **w4), allocation="uniform", **rtn),
        Setting("TC-LIF T=4 (A5)", SpikeConfig(coder="tc-lif", timesteps=4, **w4), allocation="uniform", **rtn),
        Setting("MSTS Tv/Tt=3/4", SpikeConfig(coder="tc-lif", timesteps={"vision": 3, "text": 4}, **w4),
                allocation="hand", note="the paper's headline split, by hand", **rtn),
    ]


def recipe_settings(recipe: SpikeConfig, med_cfg: SpikeConfig, search_cfg: SpikeConfig) -> list[Setting]:
    """The recipe's rows; ``med_cfg`` / ``search_cfg`` carry the allocations at the hand split's budget."""
    r = dict(method=RECIPE_NAME, recipe=True)
    return [
        Setting("recipe T=3", recipe.replace(timesteps=3), allocation="uniform", **r),
        Setting("recipe T=4", recipe.replace(timesteps=4), allocation="uniform", **r),
        Setting("recipe Tv/Tt=3/4", recipe.replace(timesteps={"vision": 3, "text": 4}), allocation="hand", **r),
        Setting("recipe MED", med_cfg, allocation="MED",
                note="per-block Tv/Tt from the cosine (MED) curves alone, at the hand split's budget", **r),
        Setting("recipe search", search_cfg, allocation="search",
                note="per-block Tv/Tt measured against FP on the calibration set, at the hand split's budget", **r),
    ]


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="run the demo (RTN baseline and the paper's recipe) on the bundled model and "
                       "write a report", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="bundled", help="'bundled' (default) or a local VLM folder")
    p.add_argument("--limit", type=int, default=None, help="items per task (default: the mini-benchmark demo size)")
    p.add_argument("--out", default="runs/demo", help="folder for results.json, plots, report.html and cache/ (a "
                   "previous demo's outputs there are replaced whole when this run completes; its cache is reused)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-new-tokens", type=int, default=12)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the bundled model is "
                   "tiny, and thread hand-offs cost more than they give, worse on a busy machine)")
    p.add_argument("--recipe-calib", default=None,
                   help="items the recipe's GPTQ calibrates on (default: minibench:32, train split)")
    p.add_argument("--search-rounds", type=int, default=1, help="local re-planning rounds of the search (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_seed(p, "the mini-benchmark's held-out items (0: the items the bundled model's scores refer to), the "
                "recipe's calibration items and torch; the budget unit's calibration set stays seed 0")
    add_placement(p)
    return p


def run(args: argparse.Namespace) -> int:
    import torch

    from ..runfolder import RunFolder
    from .common import model_inputs

    t0 = time.time()
    placement_of(args)  # a device this machine lacks: one line, before the run folder is touched
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
    from ..msts import med, plan, search
    from ..msts.budget import REFERENCE_CALIB, Pricer, calibration_set
    from ..report.measure import run_setting
    from ..report.recipe import RECIPE, RECIPE_CALIB, cache_key, calibrated_recipe, model_fingerprint, read_cached
    from ..zoo import BUNDLED_DIR
    from .common import load_model

    progress = not args.quiet
    examples = load_examples(list(BENCHMARKS), "test", args.limit, seed=args.seed)
    fp, proc = load_model(args.model, placement_of(args))
    fresh = lambda: (copy.deepcopy(fp), proc)  # noqa: E731  (every row starts from the untouched float model)
    say = lambda s: print(f"[spikemllm demo] {s}", flush=True)  # noqa: E731
    say(f"model={args.model}, {len(examples)} held-out items ({len(examples) // len(BENCHMARKS)} per task)")

    # The budget unit's calibration set: also where MED is read and the search measures.
    ref = calibration_set(REFERENCE_CALIB, fp, proc)
    result = med(fp, ref, config=RECIPE, sensitivity=False)
    price = Pricer(result.macs, REFERENCE_CALIB)
    hand = price(RECIPE.replace(timesteps={"vision": 3, "text": 4})).value

    folder = Path(args.model) if args.model != "bundled" else BUNDLED_DIR
    recipe_calib = args.recipe_calib or RECIPE_CALIB
    key = cache_key(RECIPE, model_fingerprint(args.model, folder), recipe_calib, args.seed)
    cache = _carry_cache(Path(args.out), out, f"recipe-{key}")
    ts = time.time()
    rec = calibrated_recipe(fresh, lambda m, p: calibration_set(recipe_calib, m, p, seed=args.seed, batch_size=8),
                            RECIPE, cache, progress=progress)
    say(f"recipe {RECIPE_NAME}: {'reused cached weights' if rec.reused else 'calibrated on ' + recipe_calib} "
        f"({time.time() - ts:.0f}s, {Path(args.out) / 'cache' / cache.name})")

    med_alloc = plan(result, hand, "med")
    search_file = cache / f"search-v{SEARCH_CACHE_VERSION}-{hand:.9f}-r{args.search_rounds}.json"
    cached = read_cached(search_file)
    ts = time.time()
    if cached is None:
        alloc, _ = search(fp, ref, hand, config=RECIPE, result=result, converted=rec.model,
                          rounds=args.search_rounds, progress=progress)
        cached = {"timesteps": alloc.timesteps, "measured_kl": alloc.measured_kl, "cost": alloc.cost}
        _write_json(search_file, cached)
        how = f"searched in {time.time() - ts:.0f}s"
    else:
        how = f"reused {search_file.name}"
    say(f"search at budget {hand:.3f}: KL to FP {cached['measured_kl']:.3e} on {REFERENCE_CALIB} ({how})")
    search_cfg = RECIPE.replace(timesteps=cached["timesteps"]["rest"],
                                layer_timesteps={g: t for g, t in cached["timesteps"].items() if g != "rest"})

    settings = baseline_settings() + recipe_settings(RECIPE, med_alloc.to_config(RECIPE), search_cfg)
    results: list[SettingResult] = []
    for s in settings:
        ts = time.time()
        r = run_setting(s, fresh, lambda m, p: evaluate(m, p, examples, batch_size=args.batch_size,
                                                        max_new_tokens=args.max_new_tokens, progress=progress,
                                                        desc=s.name),
                        progress=progress, converted=(rec.model, proc) if s.recipe else None)
        if s.config is not None and s.spiking:
            r.budget = price(s.config)
        results.append(r)
        say(f"{s.name}: average {r.result['average']:.2f}% ({time.time() - ts:.0f}s)")

    from ..report.demo_report import publish

    paths = publish(out, results, examples, result, {"hand 3/4": _groups(result, RECIPE), "MED": med_alloc.timesteps,
                                                      "search": cached["timesteps"]},
                    meta=_meta(args, len(examples), rec, key, recipe_calib, time.time() - t0))
    print()
    print(paths["table"])


def _carry_cache(target: Path, staging: Path, name: str) -> Path:
    """``staging/cache/<name>``, holding the previous run's copy when there is one: the run folder is replaced
    whole when the run completes, so a cache not carried over is gone (and caches this run does not use are
    dropped). Loading the copy checks every file's checksum."""
    import shutil

    src, dst = target / "cache" / name, staging / "cache" / name
    if src.is_dir() and not src.is_symlink() and not dst.exists():
        shutil.copytree(src, dst)
    return dst


def _groups(result: Any, cfg: SpikeConfig) -> dict[str, dict[str, int]]:
    from ..msts.budget import config_timesteps

    t_of = config_timesteps(cfg)
    return {g: {m: t_of(g, m) for m in ("vision", "text")} for g in result.groups()}


def _write_json(path: Path, obj: Any) -> None:
    from ..msts.result import write_json

    write_json(path, obj)


def _meta(args: argparse.Namespace, n_items: int, rec: Any, key: str, recipe_calib: str, seconds: float
          ) -> dict[str, Any]:
    import datetime
    import platform
    import sys

    import torch
    import transformers

    from .. import __version__
    from ..msts.budget import REFERENCE_CALIB, UNIT
    from ..report.recipe import RECIPE

    return {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": " ".join(["spikemllm", *sys.argv[1:]]) if sys.argv[0].endswith(("spikemllm", "main.py"))
            else "spikemllm demo", "model": args.model, "items": f"{n_items} (test split, seed {args.seed})",
            "seed": args.seed, "recipe config": RECIPE.to_json().replace("\n", " "),
            "recipe calibration": f"{recipe_calib} (train split), cache key {key}, "
                                  + ("reused" if rec.reused else "built this run"),
            "budget unit": f"{UNIT}: {REFERENCE_CALIB} (train split)",
            "versions": f"spikemllm {__version__}, torch {torch.__version__}, transformers {transformers.__version__}, "
                        f"python {platform.python_version()}",
            "threads": args.threads, "batch size": args.batch_size, "seconds": round(seconds, 1)}
