"""Planted behaviour for MED tests (imported by the tests and by conftest)."""
from __future__ import annotations

from typing import Any

import torch

import spikemllm


def freeze_vision_states(model: torch.nn.Module, inputs: dict[str, Any]) -> list[Any]:
    """Plant: every LM block passes vision-token states through unchanged (cos = 1 for vision)."""
    mm = spikemllm.describe(model)
    vis = mm.vision_mask(inputs)

    def hook(module, args, kwargs, output):
        x = args[0] if args else kwargs["hidden_states"]
        y = output[0] if isinstance(output, tuple) else output
        y = torch.where(vis.unsqueeze(-1).to(y.device), x, y)
        return (y, *output[1:]) if isinstance(output, tuple) else y

    return [blk.register_forward_hook(hook, with_kwargs=True) for blk in mm.layers("lm")]


def silence_block(model: torch.nn.Module, index: int) -> None:
    """Plant: LM block ``index`` writes nothing to the residual stream (zero output projections)."""
    blk = spikemllm.describe(model).layers("lm")[index]
    with torch.no_grad():
        blk.self_attn.o_proj.weight.zero_()
        blk.mlp.down_proj.weight.zero_()
