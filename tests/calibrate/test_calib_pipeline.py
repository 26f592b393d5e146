"""The block-by-block pipeline sees exactly what a full forward pass sees, group by group in data-flow order."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from spikemllm.calibrate import (StatsHooks, calibration_batches, calibration_stats, default_calibration, run_blockwise,
                                 write_param)
from spikemllm.config import SpikeConfig
from spikemllm.methods import QuantContext
from spikemllm.models import describe, tiny_model

FAMILIES = ["qwen2", "bert", "qwen2_vl", "qwen2_5_vl", "llava", "internvl", "idefics3"]


def _ctx(model, calib, names=None):
    mm = describe(model)
    targets = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    logs: list[str] = []
    return QuantContext(model=model, model_map=mm, config=SpikeConfig(), targets=targets, calib=calib,
                        log=logs.append), logs


@pytest.mark.parametrize("family", FAMILIES)
def test_blockwise_statistics_equal_full_forward(family):
    model, inputs = tiny_model(family)
    calib = default_calibration(describe(model), n=2, example=inputs)
    ctx, _ = _ctx(model, calib)
    got = calibration_stats(ctx, list(ctx.targets), ("absmax", "hessian"))
    with StatsHooks(ctx.targets, ("absmax", "hessian")) as ref:
        for b in calib:
            ref.token_mask = b["attention_mask"].bool()
            with torch.no_grad():
                model(**b)
    want = ref.seen()
    assert set(got) == set(want) == set(ctx.targets)
    for n in want:
        assert got[n].tokens == want[n].tokens
        assert torch.equal(got[n].absmax, want[n].absmax), n
        assert torch.allclose(got[n].xtx, want[n].xtx, rtol=1e-6, atol=1e-6 * float(want[n].xtx.abs().max())), n


def test_groups_come_in_data_flow_order_and_edits_propagate():
    model, inputs = tiny_model("qwen2_vl")
    calib = default_calibration(describe(model), n=2, example=inputs)
    ctx, _ = _ctx(model, calib)
    names = [n for n in ctx.targets if n != "lm_head"]
    labels, seen_lm0 = [], {}

    def on_group(g):
        labels.append(g.label)
        if g.label == "vision.0":                         # zero a vision block's MLP output: later stats change
            write_param(ctx.targets["model.visual.blocks.0.mlp.fc2"], "weight",
                        torch.zeros_like(ctx.targets["model.visual.blocks.0.mlp.fc2"].weight))
            write_param(ctx.targets["model.visual.blocks.0.mlp.fc2"], "bias",
                        torch.zeros_like(ctx.targets["model.visual.blocks.0.mlp.fc2"].bias))
            return True
        if g.label == "lm.0":
            seen_lm0.update(g.stats)
        return False

    before = calibration_stats(ctx, names, ("absmax",))
    run_blockwise(ctx, names, ("absmax",), on_group, progress=False)
    assert labels == ["vision.0", "vision.1", "before-lm", "lm.0", "lm.1"]
    q = "model.language_model.layers.0.self_attn.q_proj"
    assert not torch.equal(seen_lm0[q].absmax, before[q].absmax)


def test_padding_tokens_are_skipped():
    model, inputs = tiny_model("qwen2")
    ids = inputs["input_ids"]
    mask = torch.ones_like(ids)
    mask[0, -5:] = 0
    padded = {"input_ids": ids, "attention_mask": mask}
    ctx, _ = _ctx(model, [padded])
    st = calibration_stats(ctx, ["model.layers.0.mlp.down_proj"], ("absmax",))
    assert st["model.layers.0.mlp.down_proj"].tokens == int(mask.sum())


def test_layers_that_never_run_are_reported():
    model, inputs = tiny_model("bert")
    ctx, logs = _ctx(model, [inputs])
    ctx.model.pooler = nn.Identity()                      # pooler.dense still a target, but never runs
    st = calibration_stats(ctx, list(ctx.targets), ("absmax",))
    assert "pooler.dense" not in st and any("pooler.dense" in s for s in logs)


def test_default_data():
    model, inputs = tiny_model("qwen2")
    mm = describe(model)
    a, b = default_calibration(mm, n=3, seq_len=16), default_calibration(mm, n=3, seq_len=16)
    assert len(a) == 3 and a[0]["input_ids"].shape == (1, 16)
    assert all(torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(a, b))
    vlm, vin = tiny_model("llava")
    vmm = describe(vlm)
    with pytest.raises(ValueError, match="example=inputs"):
        default_calibration(vmm)
    ex = default_calibration(vmm, n=2, example=vin)
    img = vin["input_ids"] == 90
    assert torch.equal(ex[0]["input_ids"][img], vin["input_ids"][img])
    assert not (ex[0]["input_ids"][~img] == 90).any()
    assert ex[0]["pixel_values"].shape == vin["pixel_values"].shape
    assert calibration_batches(None, mm)[0]["input_ids"].shape == (1, 32)
    with pytest.raises(ValueError, match="non-empty list"):
        calibration_batches([], mm)


def test_unknown_targets_and_statistics_are_refused():
    model, inputs = tiny_model("qwen2")
    ctx, _ = _ctx(model, [inputs])
    with pytest.raises(ValueError, match="not targets"):
        calibration_stats(ctx, ["model.nope"])
    with pytest.raises(ValueError, match="allowed: absmax, hessian"):
        calibration_stats(ctx, ["lm_head"], ("variance",))


def test_layers_skipped_inside_a_block_fall_back():
    """A layer of a block that never runs on the calibration data (an unrouted MoE expert) gets no statistics;
    GPTQ leaves it to the RTN fallback instead of failing."""
    from spikemllm.methods import get_method
    model, inputs = tiny_model("qwen2")
    model.model.layers[0].mlp.forward = lambda x: torch.zeros_like(x)
    ctx, logs = _ctx(model, [inputs])
    get_method("gptq")(progress=False).apply(ctx)
    skipped = {f"model.layers.0.mlp.{p}_proj" for p in ("gate", "up", "down")}
    assert skipped.isdisjoint(ctx.weights) and "model.layers.1.mlp.up_proj" in ctx.weights
    assert any("no tokens" in s for s in logs)
