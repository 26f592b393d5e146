"""``search(model, calib, budget)``: the measured allocator.

Why not just the additive plan of :func:`spikemllm.msts.plan` (``strategy="search"``)? Its curves are taken
with every other unit at the top level, where one unit's noise is alone. At a real budget every unit is
noisy at once and errors compound: on the bundled model the additive plan at the cost of Tv/Tt = 2/4
predicted a KL of 2.5e-4 and measured 3.6e-3, six times the hand setting's. So the search measures plans
as they will run:

1. **seeds**: the additive plan and, for every Tv, the uniform split (Tv, largest Tt that fits) -- the
   family the paper's hand setting belongs to -- each filled to the budget, each *measured*
   (KL of next-token distributions against the float model on the calibration set); the best is the
   operating point;
2. **rounds**: around the operating point, measure every unit at every level (all other units where the
   operating point has them), re-plan greedily on these local curves, measure the new plan, keep it if its
   KL is lower; stop when a round does not improve.

The returned plan is the lowest KL measured, so on the calibration set it is never worse than the uniform
split of the same or lower cost. Cost: ``seeds + rounds * units * (levels - 1)`` forward passes of the
calibration set.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from ..config import SpikeConfig
from ..models.base import describe
from ..spikify import convert
from .allocate import (Allocation, _fill, _fill_groups, _greedy, _uniform_plans, check_budget, monotone,
                       search_losses, unit_weights)
from .analysis import _check_calib, med
from .result import MEDResult
from .sensitivity import kl_divergence, log_probs, timesteps_override
from .units import coder_max_timesteps

Plan = dict[tuple[str, str], int]


def default_search_levels(budget: float, coder: str, signed: bool = True) -> list[int]:
    """Two levels below the budget's floor to two above its ceiling, inside the coder's range."""
    hi = coder_max_timesteps(coder, signed)
    return list(range(max(1, math.floor(budget) - 2), min(hi, math.ceil(budget) + 2) + 1))


@torch.no_grad()
def search(model: nn.Module, calib: Iterable[dict[str, Any]], budget: float, *, config: SpikeConfig | None = None,
           result: MEDResult | None = None, levels: Iterable[int] | None = None, rounds: int = 2,
           weighting: str = "macs", progress: bool = False) -> tuple[Allocation, MEDResult]:
    """Measured allocation of ``model`` (a float model, left unchanged) under ``budget``; see module docs.

    Args:
        calib: calibration batches (the KL is taken where :func:`~spikemllm.msts.sensitivity.scored_positions`
            says: text positions, or the labelled answer positions).
        config: base SpikeConfig (default: ``result``'s base config, else ``SpikeConfig()``).
        result: a :func:`spikemllm.msts.med` result with curves on these batches; measured here when None.
        levels: timesteps each unit may take (consecutive; default: ``result``'s curve levels, else two
            steps either side of the budget).
        rounds: local re-planning rounds after the seeds (0: best seed only).
    Returns:
        ``(allocation, med_result)``; ``allocation.measured_kl`` is the plan's KL against the float model and
        ``allocation.history`` lists every plan measured.
    """
    if getattr(model, "spike_config", None) is not None:
        raise ValueError("search needs the float model (its KL is measured against it); for a converted model "
                         "use spikemllm.msts.allocate(med(model, calib), budget)")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise ValueError(f"rounds={rounds!r} is invalid; allowed: integers >= 0")
    batches = _check_calib(calib)
    if config is None:
        config = SpikeConfig.from_dict(result.base_config) if result is not None else SpikeConfig()
    b = check_budget(budget, config.coder, config.signed)
    if result is None or not result.curves:
        lv = list(levels) if levels is not None else default_search_levels(b, config.coder, config.signed)
        result = med(model, batches, config=config, sensitivity=False, levels=lv, progress=progress)
    losses = search_losses(result)
    lv = sorted(next(iter(losses.values())))
    if levels is not None and sorted(set(levels)) != lv:
        raise ValueError(f"levels={list(levels)} differ from the levels the MEDResult measured ({lv})")
    if not lv[0] <= b:
        raise ValueError(f"budget={budget!r} is out of range for search; the levels are {lv[0]}..{lv[-1]}, so "
                         f"allowed: {lv[0]} <= budget")
    w = unit_weights(result, weighting)
    units = list(w)
    mm = describe(model)
    fp_lp = log_probs(model, mm, batches)
    spk = convert(copy.deepcopy(model), config, calib=batches, progress=False)
    smm = describe(spk)
    cost_of = lambda p: sum(w[u] * p[u] for u in p)  # noqa: E731
    measured: dict[tuple, float] = {}
    history: list[dict[str, Any]] = []
    bar = tqdm(desc="search", unit="run", disable=not progress)

    def measure(p: Plan, stage: str) -> float:
        key = tuple(sorted(p.items()))
        if key not in measured:
            with timesteps_override(spk, smm, _fill_groups(result, p, b)):
                measured[key] = kl_divergence(fp_lp, log_probs(spk, smm, batches))
            history.append({"stage": stage, "cost": cost_of(p), "kl": measured[key]})
            bar.update(1)
        return measured[key]

    seeds = [_greedy(losses, w, b)] + [_fill(c, losses, w, b) for c in _uniform_plans(losses, w, b)]
    best = min(seeds, key=lambda p: measure(p, "seed"))
    best_kl = measure(best, "seed")
    for r in range(rounds):
        table: dict[tuple[str, str], dict[int, float]] = {}
        with timesteps_override(spk, smm, _fill_groups(result, best, b)):
            for u in units:
                g, m = u
                table[u] = {best[u]: best_kl}
                for t in lv:
                    if t != best[u]:
                        with timesteps_override(spk, smm, {g: {m: t}}):
                            table[u][t] = kl_divergence(fp_lp, log_probs(spk, smm, batches))
                        bar.update(1)
        cand = _greedy({u: monotone(c) for u, c in table.items()}, w, b)
        kl = measure(cand, f"round {r + 1}")
        if kl >= best_kl:
            break
        best, best_kl = cand, kl
    bar.close()
    alloc = Allocation(strategy="search", budget=b, weighting=weighting, timesteps=_fill_groups(result, best, b),
                       cost=cost_of(best), predicted_loss=sum(losses[u][best[u]] for u in best),
                       weights={g: {m: w[(g2, m)] for g2, m in w if g2 == g} for g in {g for g, _ in w}},
                       measured_kl=best_kl, history=history)
    return alloc, result
