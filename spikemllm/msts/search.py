"""``search(model, calib, budget)``: the measured allocator.

Why not just the additive plan of :func:`spikemllm.msts.plan` (``strategy="search"``)? Its curves are taken
with every other unit at the top level, where one unit's noise is alone. At a real budget every unit is
noisy at once and errors compound: on the bundled model the additive plan at the cost of Tv/Tt = 2/4
predicted a KL of 2.5e-4 and measured 3.6e-3, six times the hand setting's. So the search measures plans
as they will run (KL of next-token distributions against the float model on the calibration set):

1. **seeds**: the MED plan (:func:`~spikemllm.msts.plan` with ``strategy="med"``: cosine curves only, no
   forward pass), the greedy plan on the measured curves when the ``MEDResult`` has them, and, for every Tv,
   the uniform split (Tv, largest Tt that fits) -- the family the paper's hand setting belongs to -- both as
   it is and filled to the budget; the best measured seed is the operating point;
2. **rounds**: around the operating point, measure every unit ``radius`` levels up and down (all other units
   where the operating point has them), re-plan greedily on these local curves, measure the new plan, keep
   it if its KL is lower; stop when a round does not improve.

The returned plan is the lowest KL measured, so on the calibration set it is never worse than the MED plan
or the uniform split of the same or lower cost. Cost: at most ``seeds + rounds * (units * 2 * radius + 1)``
forward passes of the calibration set (the progress bar's total), with no per-level curve table up front:
on the bundled model ``spikemllm med --strategy search`` went from 128 passes (61 of them for the curves) to
at most 34 (9 seeds, one round; a second round there measured 25 more plans and kept none).

**Where the KL is taken.** Every text position of the calibration batches (prompt and answer), not only the
answer positions: 20 items hold about 40 answer tokens, and a plan fitted to those does not carry over.
Measured on the bundled model with the recipe (rotation + GPTQ) at the hand split's budget, held-out KL at
the gold answers of 500 test items: the plan searched on answer positions reached 0.058 (score 68.5 %), no
better than the hand split's 0.056 (70.0 %), though its answer-position KL on the calibration items was 3x
lower; the KL over all text positions of the same 20 items ranks the five plans tried (hand, MED, that
search plan, uniform 3 and 4) exactly as the held-out KL does.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from ..calibrate.offload import settle  # a dispatched model: new layers join their block's device
from ..spikify.state import converted_config
from ..errors import ConfigError
from ..config import SpikeConfig
from ..models.base import describe
from ..spikify import convert
from .allocate import (Allocation, _fill, _fill_groups, _greedy, _uniform_plans, check_budget, med_losses, monotone,
                       plan, plan_cost, search_losses, unit_weights)
from .analysis import _check_calib, _check_levels, med
from .result import MEDResult
from .sensitivity import kl_divergence, log_probs, timesteps_override
from .units import coder_max_timesteps

Plan = dict[tuple[str, str], int]
POSITIONS = ("text", "answers")


def default_search_levels(budget: float, coder: str, signed: bool = True) -> list[int]:
    """Two levels below the budget's floor to four above its ceiling, inside the coder's range (cheap units --
    the projector, a narrow vision tower -- can afford many steps: the MED plan gives the bundled model's
    projector 7 at a budget of 3.3)."""
    hi = coder_max_timesteps(coder, signed)
    return list(range(max(1, math.floor(budget) - 2), min(hi, math.ceil(budget) + 4) + 1))


@torch.no_grad()
def search(model: nn.Module, calib: Iterable[dict[str, Any]], budget: float, *, config: SpikeConfig | None = None,
           result: MEDResult | None = None, levels: Iterable[int] | None = None, rounds: int = 1, radius: int = 1,
           weighting: str = "macs", converted: nn.Module | None = None, positions: str = "text",
           progress: bool = False) -> tuple[Allocation, MEDResult]:
    """Measured allocation of ``model`` (a float model, left unchanged) under ``budget``; see module docs.

    Args:
        calib: calibration batches (the KL is taken where :func:`~spikemllm.msts.sensitivity.scored_positions`
            says: text positions, or the labelled answer positions).
        config: base SpikeConfig (default: ``result``'s base config, else ``SpikeConfig()``).
        result: a :func:`spikemllm.msts.med` result on these batches (cosines and costs; its curves, if any,
            seed the search); measured here (one float pass, no curves) when None.
        levels: timesteps each unit may take (consecutive; default: ``result``'s curve levels, else two
            steps either side of the budget).
        rounds: local re-planning rounds after the seeds (0: best seed only).
        radius: levels measured either side of a unit's operating point in a round.
        converted: ``model`` already converted with ``config`` at any timesteps (for example calibrated with
            GPTQ, which does not depend on timesteps): used instead of converting a copy here.
        positions: where the KL is taken: ``"text"`` (default: every text position, prompt and answer) or
            ``"answers"`` (only the positions the batches' ``labels`` mark). Answers alone are few (about two
            tokens per item) and a plan fitted to them does not carry over: see the module docs.
    Returns:
        ``(allocation, med_result)``; ``allocation.measured_kl`` is the plan's KL against the float model and
        ``allocation.history`` lists every plan measured.
    """
    if converted_config(model) is not None:
        raise ConfigError("search needs the float model (its KL is measured against it); for a converted model "
                          "use spikemllm.msts.allocate(med(model, calib), budget)")
    for name, v, lo in (("rounds", rounds, 0), ("radius", radius, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ConfigError(f"{name}={v!r} is invalid; allowed: integers >= {lo}")
    if positions not in POSITIONS:
        raise ConfigError(f"positions={positions!r} is unknown; allowed values: {', '.join(POSITIONS)}")
    batches = _check_calib(calib)
    if config is None:
        config = SpikeConfig.from_dict(result.base_config) if result is not None else SpikeConfig()
    b = check_budget(budget, config.coder, config.signed)
    scored = batches if positions == "answers" else [{k: v for k, v in x.items() if k != "labels"} for x in batches]
    if result is None:
        result = med(model, batches, config=config, sensitivity=False)
    if result.curves:
        losses = search_losses(result)
        lv = sorted(next(iter(losses.values())))
        if levels is not None and sorted(set(levels)) != lv:
            raise ConfigError(f"levels={list(levels)} differ from the levels the MEDResult measured ({lv})")
    else:
        lv = _check_levels(levels, config.coder, config.signed) if levels is not None else \
            default_search_levels(b, config.coder, config.signed)
        losses = med_losses(result, lv[0], lv[-1])
    if not lv[0] <= b:
        raise ConfigError(f"budget={budget!r} is out of range for search; the levels are {lv[0]}..{lv[-1]}, so "
                          f"allowed: {lv[0]} <= budget")
    w = unit_weights(result, weighting)
    units = list(w)
    mm = describe(model)
    fp_lp = log_probs(model, mm, scored)
    if converted is None:
        converted = settle(convert(copy.deepcopy(model), config, calib=batches, progress=False))
    elif converted_config(converted) is None:
        raise ConfigError("converted= must be a model converted by spikemllm.convert (the float one is model=)")
    smm = describe(converted)
    med_plan = plan(result, b, "med", weighting=weighting).timesteps  # the cosine-only plan, full range
    seeds = _seeds(losses, w, b, extra=[{u: med_plan[u[0]][u[1]] for u in units}])
    per_round = len(units) * 2 * radius + 1
    bar = tqdm(total=len(seeds) + rounds * per_round, desc="search", unit="run", disable=not progress)
    measured: dict[tuple, float] = {}
    history: list[dict[str, Any]] = []

    def run(changes: dict[str, dict[str, int]]) -> float:
        with timesteps_override(converted, smm, changes):
            kl = kl_divergence(fp_lp, log_probs(converted, smm, scored))
        bar.update(1)
        return kl

    def measure(p: Plan, stage: str) -> float:
        key = tuple(sorted(p.items()))
        if key not in measured:
            measured[key] = run(_fill_groups(result, p, b))
            history.append({"stage": stage, "cost": plan_cost(result, p, weighting), "kl": measured[key]})
        return measured[key]

    best = min(seeds, key=lambda p: measure(p, "seed"))
    best_kl = measure(best, "seed")
    for r in range(rounds):
        table: dict[tuple[str, str], dict[int, float]] = {}
        with timesteps_override(converted, smm, _fill_groups(result, best, b)):
            for u in units:
                g, m = u
                table[u] = {best[u]: best_kl}
                for t in _local_levels(lv, best[u], radius):
                    table[u][t] = run({g: {m: t}})
        cand = _greedy({u: monotone(c) for u, c in table.items()}, w, b)
        kl = measure(cand, f"round {r + 1}")
        if kl >= best_kl:
            break
        best, best_kl = cand, kl
    bar.total = bar.n  # rounds that were not needed
    bar.refresh()
    bar.close()
    alloc = Allocation(strategy="search", budget=b, weighting=weighting, timesteps=_fill_groups(result, best, b),
                       cost=plan_cost(result, best, weighting),
                       predicted_loss=sum(losses[u][best[u]] for u in best if best[u] in losses[u]),
                       weights={g: {m: w[(g2, m)] for g2, m in w if g2 == g} for g in {g for g, _ in w}},
                       measured_kl=best_kl, history=history)
    return alloc, result


def _local_levels(levels: list[int], t: int, radius: int) -> list[int]:
    """Levels within ``radius`` of ``t`` (``t`` itself excluded), inside ``levels``."""
    return [x for x in levels if x != t and abs(x - t) <= radius]


def _seeds(losses: dict[tuple[str, str], dict[int, float]], w: dict[tuple[str, str], float], b: float,
           extra: list[Plan] = ()) -> list[Plan]:
    """``extra`` plans, the greedy plan, and every affordable uniform split as it is and filled; no duplicates."""
    out: dict[tuple, Plan] = {}
    for p in [*extra, _greedy(losses, w, b)] + [q for c in _uniform_plans(losses, w, b)
                                                for q in (c, _fill(c, losses, w, b))]:
        out.setdefault(tuple(sorted(p.items())), p)
    return list(out.values())
