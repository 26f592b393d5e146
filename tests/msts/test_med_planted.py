"""MED finds behaviour planted in tiny models: frozen vision states, a silent block."""
from __future__ import annotations

import math

import pytest
import torch

import spikemllm
from spikemllm.msts import MEDResult, med, plan

from msts_plants import freeze_vision_states, silence_block


@pytest.mark.parametrize("family", ["qwen2_vl", "llava"])
def test_frozen_vision_states_give_cosine_one_for_vision_only(family):
    model, inputs = spikemllm.tiny_model(family)
    handles = freeze_vision_states(model, inputs)
    r = med(model, [inputs], sensitivity=False)
    for h in handles:
        h.remove()
    vis, txt = r.cosine_curve("lm", "vision"), r.cosine_curve("lm", "text")
    assert len(vis) == spikemllm.describe(model).num_layers("lm")
    assert all(v == pytest.approx(1.0, abs=1e-9) for v in vis)
    assert all(t < 0.999 for t in txt)
    assert all(d > 0 for d in r.med("lm"))  # text evolves more than vision in every block
    # the untouched model: vision tokens do change
    plain = med(spikemllm.tiny_model(family)[0], [inputs], sensitivity=False)
    assert all(v < 0.999 for v in plain.cosine_curve("lm", "vision"))


def test_vision_tower_is_all_vision_and_costs_are_token_counts():
    model, inputs = spikemllm.tiny_model("llava")
    r = med(model, [inputs], sensitivity=False)
    assert all(r.cosine[f"vision.{i}"]["text"] is None for i in range(r.num_layers["vision"]))
    assert all(0 < c["vision"] < 1 for g, c in r.cosine.items() if g.startswith("vision."))
    mm = spikemllm.describe(model)
    n_vis = int(mm.vision_mask(inputs).sum())
    n_txt = inputs["input_ids"].numel() - n_vis
    assert r.tokens["lm.0"] == {"vision": n_vis, "text": n_txt}
    blk = mm.layers("lm")[0]
    per_token = sum(m.in_features * m.out_features for m in blk.modules() if isinstance(m, torch.nn.Linear))
    assert r.macs["lm.0"] == {"vision": n_vis * per_token, "text": n_txt * per_token}
    assert r.macs["rest"]["text"] == 0 and r.macs["rest"]["vision"] > 0  # the projector sees vision tokens


def test_silent_block_has_cosine_one_and_zero_sensitivity(silenced_vlm):
    _, _, r = silenced_vlm
    assert r.cosine["lm.1"]["vision"] == pytest.approx(1.0, abs=1e-9)
    assert r.cosine["lm.1"]["text"] == pytest.approx(1.0, abs=1e-9)
    assert r.cosine["lm.0"]["text"] < 0.999
    # its timesteps cannot change the output: exactly zero, while a live block's do
    assert r.sensitivity["lm.1"] == {"vision": 0.0, "text": 0.0}
    assert r.sensitivity["lm.0"]["text"] > 0
    assert all(v == 0.0 for m in ("vision", "text") for v in r.curves["lm.1"][m].values())
    assert r.fp_kl > 0


@pytest.mark.parametrize("strategy", ["med", "search"])
def test_allocators_starve_the_silent_block(silenced_vlm, strategy):
    _, _, r = silenced_vlm
    p = plan(r, 3.5, strategy)
    lowest = 1 if strategy == "med" else 2
    assert p.timesteps["lm.1"] == {"vision": lowest, "text": lowest}
    assert p.timesteps["lm.0"]["text"] > lowest
    assert p.cost <= 3.5 + 1e-9


def test_result_json_round_trip(silenced_vlm, tmp_path):
    _, _, r = silenced_vlm
    path = r.save(tmp_path / "med.json")
    back = MEDResult.load(path)
    assert back == r
    assert back.curves["lm.0"]["text"][2] == r.curves["lm.0"]["text"][2]
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(ValueError, match="unknown MEDResult fields"):
        MEDResult.from_dict({**r.to_dict(), "bogus": 1})
    assert not math.isnan(back.med_score())


def test_med_rejects_empty_calibration():
    model, _ = spikemllm.tiny_model("qwen2")
    with pytest.raises(ValueError, match="calib must be a non-empty list"):
        med(model, [])
    batch = {"input_ids": torch.ones(1, 4, dtype=torch.long)}
    for bad in ([3], [2, 4], [0, 1], [15, 16]):
        with pytest.raises(ValueError, match="consecutive integers in 1..15"):
            med(model, [batch], levels=bad)
    with pytest.raises(ValueError, match="reference='float' is unknown"):
        med(model, [batch], reference="float")


def test_fp_reference_measures_the_increase_of_the_gap_to_fp():
    model, inputs = spikemllm.tiny_model("llava", seed=2)
    silence_block(model, 0)
    r = med(model, [inputs], reference="fp")
    assert r.sensitivity_reference == "fp"
    assert r.sensitivity["lm.0"] == {"vision": 0.0, "text": 0.0}  # silent block: the gap cannot move
    assert r.sensitivity["lm.1"]["text"] != 0.0
    assert r.fp_kl > 0
