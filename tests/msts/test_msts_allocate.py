"""The allocator: meets or stays under the budget, errors clearly, returns configs that convert and run,
and its cost is the MAC-weighted average timesteps a real run measures."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import spikemllm
from spikemllm.msts import MEDResult, allocate, average_timesteps, budget_range, plan
from spikemllm.msts.allocate import search_losses

BASE = spikemllm.SpikeConfig().to_dict()


def synthetic(n_lm: int, n_vis: int, macs: list[int], cos: list[float], slopes: list[float],
              coder: str = "tc-lif") -> MEDResult:
    """A MEDResult without a model: costs, cosines and convex measured curves on levels 1..6."""
    groups = [f"vision.{i}" for i in range(n_vis)] + ["rest"] + [f"lm.{i}" for i in range(n_lm)]
    it = iter(range(10 ** 6))
    cell_macs, cosine, curves = {}, {}, {}
    for g in groups:
        both = g.startswith("lm.")
        cell_macs[g] = {"vision": macs[next(it) % len(macs)], "text": macs[next(it) % len(macs)] if both else 0}
        if g != "rest":
            cosine[g] = {"vision": cos[next(it) % len(cos)], "text": cos[next(it) % len(cos)] if both else None}
        curves[g] = {}
        for m in ("vision", "text"):
            if cell_macs[g][m] > 0:  # roughly 4x per step (TC-LIF), with a per-level wobble: not always convex
                s = slopes[next(it) % len(slopes)]
                curves[g][m] = {t: s * 4.0 ** (6 - t) * (1 + 0.5 * (next(it) % 3 == 0)) for t in range(1, 6)}
                curves[g][m][6] = 0.0
    return MEDResult(family="synthetic", coder=coder, signed=True, num_layers={"lm": n_lm, "vision": n_vis},
                     cosine=cosine, macs=cell_macs, tokens={g: {m: int(v > 0) for m, v in c.items()}
                                                            for g, c in cell_macs.items()},
                     base_config=dict(BASE, coder=coder), curves=curves, curve_reference_t=6)


results = st.builds(
    synthetic, n_lm=st.integers(1, 6), n_vis=st.integers(0, 4),
    macs=st.lists(st.integers(1, 10 ** 6), min_size=1, max_size=8),
    cos=st.lists(st.floats(-0.5, 1.0), min_size=1, max_size=8),
    slopes=st.lists(st.floats(1e-6, 10.0), min_size=1, max_size=8))


@settings(max_examples=150, deadline=None)
@given(r=results, budget=st.floats(1.0, 15.0), weighting=st.sampled_from(["macs", "tokens", "equal"]))
def test_med_strategy_never_exceeds_the_budget(r, budget, weighting):
    p = plan(r, budget, "med", weighting=weighting)
    assert p.cost <= budget + 1e-9
    cfg = p.to_config(r.base_config)
    assert average_timesteps(r, cfg, weighting) == pytest.approx(p.cost, abs=1e-9)
    # it spends the budget: no single step up still fits (every med step up lowers the loss)
    w = p.weights
    assert not [(g, m) for g in w for m in w[g] if p.timesteps[g][m] < 15 and p.cost + w[g][m] <= budget + 1e-9]


@settings(max_examples=150, deadline=None)
@given(r=results, budget=st.floats(1.0, 6.0), weighting=st.sampled_from(["macs", "equal"]))
def test_search_strategy_never_exceeds_the_budget_and_beats_uniform_splits(r, budget, weighting):
    p = plan(r, budget, "search", weighting=weighting)
    assert p.cost <= budget + 1e-9
    # never worse, by its own (monotone) measured losses, than any uniform Tv/Tt split that also fits
    units, losses = r.units(), search_losses(r)
    for tv in range(1, 7):
        for tt in range(1, 7):
            t = {(g, m): (tv if m == "vision" else tt) for g, m in units}
            cost = sum(p.weights[g][m] * t[(g, m)] for g, m in units)
            if cost <= budget + 1e-9:
                loss = sum(losses[(g, m)][t[(g, m)]] for g, m in units)
                assert p.predicted_loss <= loss * (1 + 1e-9) + 1e-12


@pytest.mark.parametrize("budget", [3.0, 3.5, 4.0, 1.0, 15.0])
def test_integer_budgets_are_met_exactly_when_uniform(budget):
    r = synthetic(3, 2, [5, 7, 11], [0.9, 0.5], [1.0])
    p = plan(r, budget, "med", weighting="equal")
    assert p.cost <= budget + 1e-9
    if budget == int(budget):
        assert p.cost == pytest.approx(budget)  # a uniform plan fits exactly, so nothing is left unspent


@pytest.mark.parametrize("bad", [0.5, 0, -3, 15.5, 100, float("nan"), float("inf"), "3", True, None])
def test_bad_budgets_name_the_budget_and_the_range(bad):
    r = synthetic(2, 1, [3], [0.9], [1.0])
    with pytest.raises(ValueError, match="budget") as e:
        plan(r, bad, "med")
    if isinstance(bad, (int, float)) and not isinstance(bad, bool) and bad == bad and abs(bad) != math.inf:
        assert "1 <= budget <= 15" in str(e.value)


def test_rate_coding_range_and_search_range_errors():
    assert budget_range("tc-lif") == (1, 15)
    assert budget_range("if", signed=True) == (1, 127)
    r = synthetic(2, 1, [3], [0.9], [1.0])
    high_only = {g: {m: {t: v for t, v in c.items() if t >= 3} for m, c in cm.items()} for g, cm in r.curves.items()}
    with pytest.raises(ValueError, match="measured curves cover 3..6"):
        plan(MEDResult(**{**vars(r), "curves": high_only}), 2.0, "search")
    with pytest.raises(ValueError, match="strategy='search' needs measured curves"):
        plan(MEDResult(**{**vars(r), "curves": {}}), 3.0, "search")
    with pytest.raises(ValueError, match="strategy='greedy' is unknown"):
        plan(r, 3.0, "greedy")
    with pytest.raises(ValueError, match="weighting='flops' is unknown"):
        plan(r, 3.0, "med", weighting="flops")
    with pytest.raises(ValueError, match="t_max=16 is out of range"):
        plan(r, 3.0, "med", t_max=16)
    with pytest.raises(ValueError, match="allowed: 2 <= budget <= 4"):
        plan(r, 5.0, "med", t_min=2, t_max=4)


@pytest.mark.parametrize("strategy", ["med", "search"])
def test_allocated_config_converts_runs_and_costs_what_a_run_measures(silenced_vlm, strategy):
    fp, inputs, r = silenced_vlm
    cfg = allocate(r, 3.5, strategy)
    assert isinstance(cfg, spikemllm.SpikeConfig)
    assert spikemllm.SpikeConfig.from_json(cfg.to_json()) == cfg
    model = spikemllm.convert(copy.deepcopy(fp), cfg, progress=False)
    with spikemllm.collect_stats(model) as stats, torch.no_grad():
        out = model(**inputs)
    assert torch.isfinite(out.logits).all()
    # cost = MAC-weighted average timesteps, measured from the run's own counters
    steps = macs = 0.0
    for ls in stats.layers.values():
        for c in ls.per_modality.values():
            if c.tokens:
                steps += c.macs * c.steps_per_token / c.tokens
                macs += c.macs
    measured = steps / macs
    assert measured == pytest.approx(plan(r, 3.5, strategy).cost, rel=1e-12)
    assert measured <= 3.5 + 1e-9
