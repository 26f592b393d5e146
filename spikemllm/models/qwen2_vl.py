"""Qwen2-VL and Qwen2.5-VL: vision ``model.visual`` (its ``merger`` is the projector), LM ``model.language_model``.

Modality: transformers 5 passes ``mm_token_type_ids`` (0 text, 1 image, 2 video); without it the image and
video token ids decide.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import Adapter, ModelMap, register_adapter, token_ids
from .blocks import DECODER, QWEN2_VISION, QWEN25_VISION


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


register_adapter(Qwen2VLAdapter())
