"""What each lever of the paper's recipe buys on the bundled VLM, at the hand split Tv/Tt = 3/4 and beyond.

    .venv/bin/python benchmarks/bench_levers.py                    # every row (about 15 min on 2 quiet cores)
    .venv/bin/python benchmarks/bench_levers.py --rows rtn,rot,rg  # some rows

Each row converts the bundled model with one config (levers added one at a time, then alone where that is
clearer), runs it at a timestep plan (``hand``: Tv/Tt = 3/4 everywhere; ``T8``: uniform 8 -- 9-bit activations,
so the row shows what the 4-bit weights alone cost; ``MED``: the MED-guided plan at the hand split's budget)
and scores it on 100 held-out items per task (500 in all; the demo uses 40 per task). Columns: KL(FP || row)
of next-token distributions at the gold answers of the same 500 items (teacher-forced), the per-task scores,
the average and the gap to FP. Calibration (GPTQ's Hessians) uses train-split items only.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import spikemllm  # noqa: E402
from spikemllm.bench import evaluate, load_examples, minibench  # noqa: E402
from spikemllm.bench.example import BENCHMARKS  # noqa: E402
from spikemllm.msts import kl_divergence, log_probs, med, plan, timesteps_override  # noqa: E402
from spikemllm.msts.budget import REFERENCE_CALIB, Pricer, calibration_set, config_timesteps  # noqa: E402
from spikemllm.msts.calib import calibration_from_examples  # noqa: E402
from spikemllm.msts.sensitivity import spike_groups  # noqa: E402
from spikemllm.zoo import load_bundled  # noqa: E402

HAND = {"timesteps": {"vision": 3, "text": 4}}
RG = {"method": ["rotation", "gptq"]}
G64 = {"act_group_size": 64}
PROJ_FP = {"ignore": ["lm_head", "re:multi_modal_projector"]}
PG64 = {"weight_granularity": "per-group", "group_size": 64, "act_group_size": 64}
PG32 = {"weight_granularity": "per-group", "group_size": 32, "act_group_size": 32}
# name: (lever, config fields, plan, calibration items)
ROWS: dict[str, tuple[str, dict[str, Any], str, int]] = {
    "rtn": ("RTN (plain baseline)", {}, "hand", 32),
    "rot": ("+ rotation (RTN weights)", {"method": "rotation"}, "hand", 32),
    "gptq": ("GPTQ alone", {"method": "gptq"}, "hand", 32),
    "rg": ("rotation + GPTQ", RG, "hand", 32),
    "rg_g64": ("+ act groups of 64", {**RG, **G64}, "hand", 32),
    "rg_g32": ("+ act groups of 32 (instead of 64)", {**RG, "act_group_size": 32}, "hand", 32),
    "rg_g16": ("+ act groups of 16 (instead of 64)", {**RG, "act_group_size": 16}, "hand", 32),
    "rg_g64_clip": ("+ act clip 0.95", {**RG, **G64, "act_clip": 0.95}, "hand", 32),
    "rg_g64_ss": ("+ GPTQ weight-clip search (20 ratios)",
                  {**RG, **G64, "method_options": {"gptq": {"scale_search": 20}}}, "hand", 32),
    "rg_g64_pg": ("+ per-group weights (64)", {**RG, **PG64}, "hand", 32),
    "rg_pg32": ("+ per-group weights and act groups (32)", {**RG, **PG32}, "hand", 32),
    "rg_g64_projfp": ("+ float projector (outside the budget)", {**RG, **G64, **PROJ_FP}, "hand", 32),
    "rg_g64_c8": ("+ 8 calibration items (instead of 32)", {**RG, **G64}, "hand", 8),
    "rg_g64_c128": ("+ 128 calibration items (instead of 32)", {**RG, **G64}, "hand", 128),
    "rg_g64_med": ("rotation + GPTQ + groups 64, MED plan", {**RG, **G64}, "MED", 32),
    "rg_pg32_med": ("rotation + GPTQ + per-group 32, MED plan", {**RG, **PG32}, "MED", 32),
    "T8_rtn": ("weights only (T=8): RTN", {}, "T8", 32),
    "T8_rg": ("weights only (T=8): rotation + GPTQ", RG, "T8", 32),
    "T8_rg_pg": ("weights only (T=8): rotation + GPTQ, per-group 64", {**RG, **PG64}, "T8", 32),
    "T8_rg_lm": ("weights only (T=8): rotation + GPTQ, LM only (vision, projector float)",
                 {**RG, "ignore": ["lm_head", "re:multi_modal_projector", "re:vision_tower"]}, "T8", 32),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default=",".join(ROWS), help="comma-separated row names (default: all)")
    ap.add_argument("--n-eval", type=int, default=100, help="held-out items per task (default 100)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    names = [r for r in args.rows.split(",") if r]
    unknown = [r for r in names if r not in ROWS]
    if unknown:
        ap.error(f"unknown rows {unknown}; choose from {list(ROWS)}")
    t0 = time.time()
    fp, proc = load_bundled()
    mm = spikemllm.describe(fp)
    examples = load_examples(list(BENCHMARKS), "test", args.n_eval)
    held = calibration_from_examples(proc, minibench.build("test", n_per_task=args.n_eval, seed=0), batch_size=25)
    fp_lp = log_probs(fp, mm, held)
    fp_res = evaluate(fp, proc, examples, batch_size=64, max_new_tokens=12, progress=False)
    ref = calibration_set(REFERENCE_CALIB, fp, proc)
    result = med(fp, ref, config=spikemllm.SpikeConfig(), sensitivity=False)
    hand_cfg = spikemllm.SpikeConfig(**HAND)
    hand_budget = Pricer(result.macs, REFERENCE_CALIB)(hand_cfg).value
    t_of = {"hand": config_timesteps(hand_cfg), "T8": lambda g, m: 8,
            "MED": config_timesteps(plan(result, hand_budget, "med").to_config(hand_cfg))}
    calibs: dict[int, list] = {}
    tasks = list(fp_res["tasks"])
    print(f"| row | lever | plan | KL(FP‖row) | {' | '.join(tasks)} | avg % | gap to FP | convert s |")
    print("|" + "---|" * (len(tasks) + 7))
    print("| fp | FP32 | - | 0 | " + " | ".join(f"{fp_res['tasks'][k]['normalized']:.1f}" for k in tasks)
          + f" | {fp_res['average']:.2f} | +0.00 | - |", flush=True)
    for name in names:
        lever, fields, plan_name, n_cal = ROWS[name]
        if n_cal not in calibs:
            calibs[n_cal] = calibration_set(f"minibench:{n_cal}", fp, proc, batch_size=8)
        ts = time.time()
        cfg = spikemllm.SpikeConfig(**{**HAND, **fields})
        spk = spikemllm.convert(copy.deepcopy(fp), cfg, calib=calibs[n_cal], progress=False)
        conv = time.time() - ts
        smm = spikemllm.describe(spk)
        groups = {g: {m: t_of[plan_name](g, m) for m in ("vision", "text")} for g in spike_groups(spk, smm)}
        with timesteps_override(spk, smm, groups):
            kl = kl_divergence(fp_lp, log_probs(spk, smm, held))
            res = evaluate(spk, proc, examples, batch_size=64, max_new_tokens=12, progress=False)
        print(f"| {name} | {lever} | {plan_name} | {kl:.4f} | "
              + " | ".join(f"{res['tasks'][k]['normalized']:.1f}" for k in tasks)
              + f" | {res['average']:.2f} | {res['average'] - fp_res['average']:+.2f} | {conv:.0f} |", flush=True)
    print(f"\n{len(names)} rows, {len(examples)} items each, {time.time() - t0:.0f}s; hand budget {hand_budget:.3f} "
          f"({REFERENCE_CALIB})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
