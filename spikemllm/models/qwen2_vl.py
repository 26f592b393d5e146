"""Qwen2-VL and Qwen2.5-VL: vision ``model.visual`` (its ``merger`` is the projector), LM ``model.language_model``.

Modality: transformers 5 passes ``mm_token_type_ids`` (0 text, 1 image, 2 video); without it the image and
video token ids decide.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from .base import Adapter, ModelMap, register_adapter, token_ids
from .blocks import DECODER, QWEN2_VISION, QWEN25_VISION
from .shape import AttentionShape, LinearOp, ModelShape, decoder_shape, register_workload


class Qwen2VLAdapter(Adapter):
    family = "qwen2-vl"
    model_types = ("qwen2_vl", "qwen2_5_vl")

    def describe(self, model: nn.Module) -> ModelMap:
        ids = token_ids(model.config, "image_token_id", "video_token_id")

        def mask(inputs: dict[str, Any]) -> torch.Tensor | None:
            tt = inputs.get("mm_token_type_ids")
            if tt is not None:
                return tt > 0
            x = inputs.get("input_ids")
            return None if x is None else torch.isin(x, torch.tensor(ids, device=x.device))

        return ModelMap(family=self.family, model=model, vision="model.visual", vision_layers="model.visual.blocks",
                        projector="model.visual.merger", lm="model.language_model",
                        lm_layers="model.language_model.layers", lm_head="lm_head", image_token_ids=ids,
                        vision_mask_fn=mask, lm_block=DECODER,
                        vision_block=QWEN25_VISION if model.config.model_type == "qwen2_5_vl" else QWEN2_VISION,
                        embed="model.language_model.embed_tokens", final_norm="model.language_model.norm")

    def model_shape(self, config: Any, name: str | None = None) -> ModelShape:
        """The decoder LM plus, when the vision config has Qwen2-VL's fields (``embed_dim``), the vision tower
        per patch and the merger per merged image token (``spatial_merge_size`` squared patches)."""
        shape = decoder_shape(config, name)
        vis = getattr(config, "vision_config", None)
        if vis is None or not hasattr(vis, "embed_dim"):
            return shape
        e, d, vh = vis.embed_dim, vis.depth, vis.num_heads
        ratio = getattr(vis, "mlp_ratio", 4)
        patch, m = vis.patch_size, vis.spatial_merge_size
        merge = m * m
        pin = vis.in_channels * vis.temporal_patch_size * patch * patch
        vision = (LinearOp("patch_embed", pin, e, 1), LinearOp("qkv", e, 3 * e, d), LinearOp("proj", e, e, d),
                  LinearOp("fc1", e, int(e * ratio), d), LinearOp("fc2", int(e * ratio), e, d))
        out = getattr(vis, "hidden_size", shape.hidden)
        return replace(shape, vision_linears=vision,
                       vision_attention=AttentionShape(layers=d, heads=vh, kv_heads=vh, head_dim=e // vh, causal=False),
                       projector_linears=(LinearOp("merger.fc1", e * merge, e * merge, 1),
                                          LinearOp("merger.fc2", e * merge, out, 1)),
                       patch_size=patch, merge=merge)


register_adapter(Qwen2VLAdapter())


def qwen2_vl_7b() -> ModelShape:
    """Qwen2-VL-7B-Instruct by shape, written out by hand from its config.json (LM 28 layers, hidden 3584,
    intermediate 18944, 28 heads, 4 KV heads, vocab 152064; vision tower 32 blocks, embed 1280, 16 heads, MLP ratio
    4, patch 14, temporal patch 2, 2x2 spatial merge into a 2-layer MLP merger to 3584): the model of the paper's
    hardware comparison, reproducible without 15 GB of weights, and a check on :meth:`Qwen2VLAdapter.model_shape`."""
    L, h, inter, heads, kv, hd = 28, 3584, 18944, 28, 4, 128
    e, d = 1280, 32
    return ModelShape(
        name="qwen2-vl-7b", hidden=h, intermediate=inter, vocab=152064,
        lm_linears=(LinearOp("q_proj", h, heads * hd, L), LinearOp("k_proj", h, kv * hd, L),
                    LinearOp("v_proj", h, kv * hd, L), LinearOp("o_proj", heads * hd, h, L),
                    LinearOp("gate_proj", h, inter, L), LinearOp("up_proj", h, inter, L),
                    LinearOp("down_proj", inter, h, L)),
        lm_attention=AttentionShape(layers=L, heads=heads, kv_heads=kv, head_dim=hd, causal=True),
        lm_head=LinearOp("lm_head", h, 152064, 1),
        vision_linears=(LinearOp("patch_embed", 3 * 2 * 14 * 14, e, 1), LinearOp("qkv", e, 3 * e, d),
                        LinearOp("proj", e, e, d), LinearOp("fc1", e, 4 * e, d), LinearOp("fc2", 4 * e, e, d)),
        vision_attention=AttentionShape(layers=d, heads=16, kv_heads=16, head_dim=e // 16, causal=False),
        projector_linears=(LinearOp("merger.fc1", 4 * e, 4 * e, 1), LinearOp("merger.fc2", 4 * e, h, 1)),
        patch_size=14, merge=4,
    )


register_workload("qwen2-vl-7b", qwen2_vl_7b)
