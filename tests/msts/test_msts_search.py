"""The measured search: stays under the budget, reports the KL a fresh conversion of its plan has, and is never
worse on the calibration set than the uniform Tv/Tt splits it could afford."""
from __future__ import annotations

import copy

import pytest

import spikemllm
from spikemllm.msts import average_timesteps, kl_divergence, log_probs, search


@pytest.fixture(scope="module")
def searched(silenced_vlm):
    fp, inputs, r = silenced_vlm
    return fp, inputs, r, search(fp, [inputs], 3.5, result=r)[0]


def test_search_stays_under_budget_and_its_kl_is_what_a_conversion_measures(searched):
    fp, inputs, r, alloc = searched
    assert alloc.strategy == "search" and alloc.cost <= 3.5 + 1e-9
    cfg = alloc.to_config(r.base_config)
    assert average_timesteps(r, cfg) == pytest.approx(alloc.cost)
    mm = spikemllm.describe(fp)
    spk = spikemllm.convert(copy.deepcopy(fp), cfg, progress=False)
    kl = kl_divergence(log_probs(fp, mm, [inputs]), log_probs(spk, mm, [inputs]))
    assert kl == pytest.approx(alloc.measured_kl, rel=1e-9, abs=1e-12)
    assert alloc.history and min(h["kl"] for h in alloc.history) == alloc.measured_kl


def test_search_beats_every_affordable_uniform_split_on_calibration(searched):
    fp, inputs, r, alloc = searched
    mm = spikemllm.describe(fp)
    fp_lp = log_probs(fp, mm, [inputs])
    checked = 0
    for tv in range(2, 6):
        for tt in range(2, 6):
            cfg = spikemllm.SpikeConfig(timesteps={"vision": tv, "text": tt})
            if average_timesteps(r, cfg) <= 3.5:
                spk = spikemllm.convert(copy.deepcopy(fp), cfg, progress=False)
                assert alloc.measured_kl <= kl_divergence(fp_lp, log_probs(spk, mm, [inputs])) + 1e-12
                checked += 1
    assert checked >= 3  # includes the paper's Tv/Tt = 3/4 when it fits


def test_search_is_never_worse_than_the_med_plan_and_shows_a_bounded_bar(searched, capsys):
    from spikemllm.msts import plan

    fp, inputs, r, alloc = searched
    mm = spikemllm.describe(fp)
    cfg = plan(r, 3.5, "med").to_config(r.base_config)
    spk = spikemllm.convert(copy.deepcopy(fp), cfg, progress=False)
    assert alloc.measured_kl <= kl_divergence(log_probs(fp, mm, [inputs]), log_probs(spk, mm, [inputs])) + 1e-12
    a2, r2 = search(fp, [inputs], 3.5, rounds=1, progress=True)  # no MED curves needed
    assert not r2.curves and a2.cost <= 3.5 + 1e-9
    bar = capsys.readouterr().err.replace("\r", "\n").splitlines()
    totals = {ln.split("/")[1].split()[0] for ln in bar if ln.startswith("search:") and "/" in ln}
    assert totals and all(t.isdigit() for t in totals)  # a bar with a known total (tqdm then shows an ETA)


def test_search_errors(silenced_vlm):
    fp, inputs, r = silenced_vlm
    with pytest.raises(ValueError, match="budget=1.5 is out of range for search; the levels are 2..5"):
        search(fp, [inputs], 1.5, result=r)
    with pytest.raises(ValueError, match="budget=16 is out of range"):
        search(fp, [inputs], 16, result=r)
    with pytest.raises(ValueError, match="rounds=-1"):
        search(fp, [inputs], 3, result=r, rounds=-1)
    spk = spikemllm.convert(copy.deepcopy(fp), spikemllm.SpikeConfig(), progress=False)
    with pytest.raises(ValueError, match="search needs the float model"):
        search(spk, [inputs], 3, result=r)
