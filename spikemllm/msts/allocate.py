"""The allocator: Tv and Tt per block under an average-timestep budget, returned as a SpikeConfig.

**Cost.** Each unit (group x modality, see :mod:`.units`) has a weight; the cost of a plan is the weighted
average of its timesteps, ``sum_u w_u T_u / sum_u w_u``. Weightings:

* ``"macs"`` (default): the unit's MACs on the calibration set (token count x the block's MACs per token),
  i.e. the average timesteps per multiply-accumulate -- what the accelerator actually pays;
* ``"tokens"``: the unit's token count (every block costs the same per token);
* ``"equal"``: every unit the same (the paper's arithmetic: Tv/Tt = 3/4 is "3.5").

A plan never costs more than the budget: it meets it exactly or stays under.

**Loss tables.** Both strategies minimise a sum of per-unit losses ``loss_u(T)`` with one solver:

* ``"med"`` (cheap, from the cosine curves only): a block that changes a modality's states by a relative
  amount ``e = 1 - cos(h_l, h_{l+1})`` adds quantization noise of power ~ ``e / qmax(T)^2`` to the residual
  stream, since its output is ~ ``sqrt(e)`` of the state and the step size is ~ ``1 / qmax(T)``. Blocks and
  modalities that change more therefore get more steps. Linears outside the blocks (the projector) write
  the whole state, so ``e = 1`` there.
* ``"search"`` (measured): ``loss_u(T)`` is the KL measured by :func:`spikemllm.msts.med` with ``levels``
  (unit ``u`` at ``T``, everything else at the reference), made non-increasing in ``T``.

**Solver.** Greedy on marginal loss per unit of cost: start with every unit at the top of its range, take
the step down that loses least per unit of cost saved until the plan fits, then spend what is left on the
steps up that gain most per unit of cost and still fit. Every uniform per-modality plan ``(Tv, Tt)`` that
fits is filled the same way, and the plan with the smallest total loss wins -- so a search plan is never
worse, by its own measurements, than a hand setting of the same or lower cost.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, DataError
from ..config import SpikeConfig
from .budget import config_timesteps, mac_weighted_timesteps
from .result import MEDResult
from .units import MODALITIES, REST, check_number, coder_max_timesteps, group_sort_key, qmax

STRATEGIES = ("med", "search")
WEIGHTINGS = ("macs", "tokens", "equal")
_EPS = 1e-9  # cost tolerance: sums of float weights


@dataclass
class Allocation:
    """A plan: timesteps per group and modality, its cost and the numbers that chose it."""

    strategy: str
    budget: float
    weighting: str
    timesteps: dict[str, dict[str, int]]  # group -> {"vision": Tv, "text": Tt}
    cost: float
    predicted_loss: float
    weights: dict[str, dict[str, float]] = field(default_factory=dict)  # normalised, units only
    measured_kl: float | None = None  # set by spikemllm.msts.search: KL(FP || plan) on the calibration set
    history: list[dict[str, Any]] = field(default_factory=list)  # search: every plan it measured

    def to_config(self, base: SpikeConfig | dict[str, Any]) -> SpikeConfig:
        """``base`` with these timesteps: ``rest`` becomes the global ``timesteps``, blocks become overrides."""
        if isinstance(base, dict):
            base = SpikeConfig.from_dict(base)
        glob = self.timesteps.get(REST, base.timesteps)
        layers = {g: dict(t) for g, t in self.timesteps.items() if g != REST}
        return base.replace(timesteps=dict(glob), layer_timesteps=layers)

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "budget": self.budget, "weighting": self.weighting, "cost": self.cost,
                "predicted_loss": self.predicted_loss, "measured_kl": self.measured_kl, "timesteps": self.timesteps,
                "weights": self.weights, "history": self.history}


def unit_weights(result: MEDResult, weighting: str = "macs") -> dict[tuple[str, str], float]:
    """Normalised cost weight of every unit (sums to 1)."""
    if weighting not in WEIGHTINGS:
        raise ConfigError(f"weighting={weighting!r} is unknown; allowed values: {', '.join(WEIGHTINGS)}")
    raw = {}
    for g, m in result.units():
        raw[(g, m)] = {"macs": result.macs[g][m], "tokens": result.tokens[g][m], "equal": 1}[weighting]
    total = float(sum(raw.values()))
    if total <= 0:
        raise DataError("the calibration set produced no cost (no tokens reached a converted linear)")
    return {u: v / total for u, v in raw.items()}


def average_timesteps(result: MEDResult, config: SpikeConfig | dict[str, dict[str, int]],
                      weighting: str = "macs") -> float:
    """Weighted average timesteps of ``config`` (or a group -> timesteps map) under ``result``'s costs.

    With ``weighting="macs"`` this is the budget unit (:func:`spikemllm.msts.budget.mac_weighted_timesteps`).
    """
    if isinstance(config, SpikeConfig):
        t_of = config_timesteps(config)
    else:
        def t_of(g: str, m: str) -> int:
            return config[g][m]
    if weighting == "macs":
        return mac_weighted_timesteps(result.macs, t_of)
    w = unit_weights(result, weighting)
    return sum(wu * t_of(g, m) for (g, m), wu in w.items())


def plan_cost(result: MEDResult, chosen: dict[tuple[str, str], int], weighting: str = "macs") -> float:
    """Cost of a unit -> timesteps plan; the budget unit for ``"macs"`` (the formula the other commands use)."""
    if weighting == "macs":
        return mac_weighted_timesteps(result.macs, lambda g, m: chosen[(g, m)])
    w = unit_weights(result, weighting)
    return sum(w[u] * chosen[u] for u in chosen)


def budget_range(coder: str, signed: bool = True) -> tuple[int, int]:
    """Allowed budgets for ``coder``: 1 step up to the coder's most steps."""
    return 1, coder_max_timesteps(coder, signed)


def check_budget(budget: Any, coder: str, signed: bool = True, t_min: int = 1, t_max: int | None = None) -> float:
    lo, hi = budget_range(coder, signed)
    t_min, t_max = max(lo, t_min), min(hi, t_max if t_max is not None else hi)
    b = check_number("budget", budget)
    if not t_min <= b <= t_max:
        raise ConfigError(f"budget={budget!r} is out of range; allowed: {t_min} <= budget <= {t_max} "
                          f"(average timesteps per token for coder {coder!r})")
    return b


# --- loss tables ---------------------------------------------------------------------------------------
def med_losses(result: MEDResult, t_lo: int, t_hi: int) -> dict[tuple[str, str], dict[int, float]]:
    """``e_u / qmax(T)^2`` with ``e_u = 1 - cos`` per unit (``e = 1`` outside blocks); see module docs."""
    out = {}
    for g, m in result.units():
        cos = result.cosine.get(g, {}).get(m) if g != REST else None
        e = 1.0 if g == REST or cos is None else max(1.0 - cos, 1e-12)
        out[(g, m)] = {t: e / qmax(result.coder, t, result.signed) ** 2 for t in range(t_lo, t_hi + 1)}
    return out


def monotone(curve: dict[int, float]) -> dict[int, float]:
    """``curve`` made non-increasing in T (a lower loss at fewer steps is measurement noise)."""
    out, run = {}, -math.inf
    for t in sorted(curve, reverse=True):
        run = max(run, float(curve[t]))
        out[t] = run
    return dict(sorted(out.items()))


def search_losses(result: MEDResult) -> dict[tuple[str, str], dict[int, float]]:
    """Measured curves of every unit, made non-increasing in T."""
    if not result.curves:
        raise ConfigError("strategy='search' needs measured curves; run spikemllm.msts.med(model, calib, "
                          "levels=range(2, 6)) (levels around the budget)")
    out = {}
    for g, m in result.units():
        curve = result.curves.get(g, {}).get(m)
        if curve is None:
            raise ConfigError(f"the MEDResult has no curve for unit {g}/{m}; measure it with med(..., levels=...)")
        out[(g, m)] = monotone(curve)
    return out


# --- solver --------------------------------------------------------------------------------------------
def _greedy(losses: dict[tuple[str, str], dict[int, float]], w: dict[tuple[str, str], float],
            budget: float) -> dict[tuple[str, str], int]:
    """Step down from the top, cheapest loss per unit of cost first, until the plan fits; then fill."""
    t = {u: max(c) for u, c in losses.items()}
    lo = {u: min(c) for u, c in losses.items()}
    cost = sum(w[u] * t[u] for u in t)
    while cost > budget + _EPS:
        best, best_r = None, math.inf
        for u in t:
            if t[u] > lo[u]:
                r = (losses[u][t[u] - 1] - losses[u][t[u]]) / w[u]
                if r < best_r:
                    best, best_r = u, r
        if best is None:
            break
        t[best] -= 1
        cost -= w[best]
    return _fill(t, losses, w, budget)


def _fill(plan_: dict[tuple[str, str], int], losses: dict[tuple[str, str], dict[int, float]],
          w: dict[tuple[str, str], float], budget: float) -> dict[tuple[str, str], int]:
    """Spend what the budget leaves on the steps up that gain most per unit of cost and still fit."""
    t = dict(plan_)
    hi = {u: max(c) for u, c in losses.items()}
    cost = sum(w[u] * t[u] for u in t)
    while True:
        best, best_r = None, 0.0
        for u in t:
            if t[u] < hi[u] and cost + w[u] <= budget + _EPS:
                r = (losses[u][t[u]] - losses[u][t[u] + 1]) / w[u]
                if r > best_r:
                    best, best_r = u, r
        if best is None:
            return t
        t[best] += 1
        cost += w[best]


def _uniform_plans(losses: dict[tuple[str, str], dict[int, float]], w: dict[tuple[str, str], float],
                   budget: float) -> list[dict[tuple[str, str], int]]:
    """For each Tv, the plan with that Tv on every vision unit and the largest Tt on every text unit that
    still fits (losses never rise with T, so smaller Tt are never better)."""
    lo = max(min(c) for c in losses.values())
    hi = min(max(c) for c in losses.values())
    out = []
    for tv in range(lo, hi + 1):
        for tt in range(hi, lo - 1, -1):
            cand = {u: (tv if u[1] == "vision" else tt) for u in losses}
            if sum(w[u] * cand[u] for u in cand) <= budget + _EPS:
                out.append(cand)
                break
    return out


def plan(result: MEDResult, budget: float, strategy: str = "med", *, weighting: str = "macs", t_min: int = 1,
         t_max: int | None = None) -> Allocation:
    """Choose timesteps per unit so that the weighted average is at most ``budget`` (see module docs).

    ``t_min``/``t_max`` bound every unit's timesteps (default: 1 and the coder's maximum; ``"search"`` is
    further bounded by the measured levels).
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy={strategy!r} is unknown; allowed values: {', '.join(STRATEGIES)}")
    lo_c, hi_c = budget_range(result.coder, result.signed)
    for name, v in (("t_min", t_min), ("t_max", t_max)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not lo_c <= v <= hi_c):
            raise ConfigError(f"{name}={v!r} is out of range; allowed: integers {lo_c}..{hi_c} for coder "
                              f"{result.coder!r}")
    t_max = hi_c if t_max is None else t_max
    if t_min > t_max:
        raise ConfigError(f"t_min={t_min} > t_max={t_max}; allowed: t_min <= t_max")
    b = check_budget(budget, result.coder, result.signed, t_min, t_max)
    w = unit_weights(result, weighting)
    if strategy == "med":
        losses = med_losses(result, t_min, t_max)
    else:
        losses = {u: {t: v for t, v in c.items() if t_min <= t <= t_max} for u, c in search_losses(result).items()}
        lo = max(min(c) if c else t_max + 1 for c in losses.values())
        hi = min(max(c) if c else 0 for c in losses.values())
        if lo > hi or not lo <= b:
            raise ConfigError(f"budget={budget!r} is out of range for strategy='search'; the measured curves cover "
                              f"{lo}..{hi} steps, so allowed: {lo} <= budget; measure lower levels with med(levels=...)")
    best = _greedy(losses, w, b)
    total = lambda p: sum(losses[u][p[u]] for u in p)  # noqa: E731
    for cand in _uniform_plans(losses, w, b):
        cand = _fill(cand, losses, w, b)
        if total(cand) < total(best) - 1e-15:
            best = cand
    timesteps = _fill_groups(result, best, b)
    return Allocation(strategy=strategy, budget=b, weighting=weighting, timesteps=timesteps,
                      cost=plan_cost(result, best, weighting),
                      predicted_loss=total(best), weights={g: {m: w[(g2, m)] for g2, m in w if g2 == g}
                                                           for g in {g for g, _ in w}})


def _fill_groups(result: MEDResult, chosen: dict[tuple[str, str], int], budget: float) -> dict[str, dict[str, int]]:
    """Group -> both modalities. A modality with no tokens in a group (text in the vision tower) costs
    nothing; it gets the other modality's steps so the config reads naturally."""
    out: dict[str, dict[str, int]] = {}
    for g in sorted({g for g, _ in chosen} | set(result.macs), key=group_sort_key):
        cell = {m: chosen[(g, m)] for m in MODALITIES if (g, m) in chosen}
        fill = next(iter(cell.values()), max(1, math.floor(budget)))
        out[g] = {m: cell.get(m, fill) for m in MODALITIES}
    return out


def allocate(result: MEDResult, budget: float, strategy: str = "med", *, base: SpikeConfig | None = None,
             weighting: str = "macs", t_min: int = 1, t_max: int | None = None) -> SpikeConfig:
    """A SpikeConfig with per-block Tv/Tt whose weighted average timesteps is at most ``budget``.

    ``base`` (default: the config MED measured at) gives every other field; see :func:`plan` for the rest.
    """
    p = plan(result, budget, strategy, weighting=weighting, t_min=t_min, t_max=t_max)
    return p.to_config(base if base is not None else result.base_config)
