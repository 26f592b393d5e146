"""Adapters own layouts: the block layouts they declare fit their models, attention comes from the model map,
and a user's layout overrides an adapter's."""
from __future__ import annotations

import dataclasses

import pytest
from torch import nn

from spikemllm import SpikeConfig, describe, tiny_model
from spikemllm.methods import QuantContext, get_method
from spikemllm.models import BlockLayout, declare_layout
from spikemllm.models.tiny import BUILDERS


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_declared_block_layouts_fit_every_block(family):
    model, _ = tiny_model(family)
    mm = describe(model)
    for kind in ("lm", "vision"):
        lay = mm.block_layout(kind)
        if mm.num_layers(kind) == 0:
            assert lay is None
            continue
        assert lay is not None and lay.name != "inferred", (family, kind)
        for block in mm.layers(kind):
            assert lay.missing_in(block) == []


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_attention_modules_are_the_attention_classes(family):
    """The adapters' explicit attention names find exactly what the class-name rule used to find."""
    model, _ = tiny_model(family)
    mm = describe(model)
    by_class = {n for n, m in model.named_modules()
                if type(m).__name__.endswith("Attention") and mm.region_of(n) is not None}
    assert set(mm.attention_modules()) == by_class and by_class


def _rotate(model, mm):
    targets = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear) and n != mm.lm_head}
    logs: list[str] = []
    ctx = QuantContext(model=model, model_map=mm, config=SpikeConfig(method="rotation"), targets=targets,
                       log=logs.append)
    m = get_method("rotation")()
    m.apply(ctx)
    return m, logs


def test_a_user_layout_overrides_the_adapters_blocks():
    model, _ = tiny_model("qwen2")
    m, _ = _rotate(model, describe(model))
    assert m.offline_applied
    model, _ = tiny_model("qwen2")
    mm = describe(model)
    # Declaring the decoder blocks as not RMSNorm turns the offline residual rotation off.
    declare_layout(model, dataclasses.replace(mm, lm_block=dataclasses.replace(mm.lm_block, rms_norm=False)))
    m, logs = _rotate(model, describe(model))
    assert not m.offline_applied and any("no RMSNorm decoder block" in s for s in logs)


def test_block_layouts_round_trip_through_a_layout_dict():
    model, _ = tiny_model("qwen2")
    lay = BlockLayout.from_dict(describe(model).lm_block.to_dict())
    assert lay == describe(model).lm_block
    with pytest.raises(ValueError, match="unknown block layout field"):
        BlockLayout.from_dict({"norm": []})
