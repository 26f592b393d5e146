"""Idefics3 and SmolVLM: SigLIP-style ``vision_model``, ``connector`` (pixel shuffle + projection), ``text_model``."""
from __future__ import annotations

from torch import nn

from .base import Adapter, ModelMap, register_adapter, token_ids
from .blocks import CLIP_VISION, DECODER


class Idefics3Adapter(Adapter):
    family = "idefics3"
    model_types = ("idefics3", "smolvlm")

    def describe(self, model: nn.Module) -> ModelMap:
        return ModelMap(family=self.family, model=model, vision="model.vision_model",
                        vision_layers="model.vision_model.encoder.layers", projector="model.connector",
                        lm="model.text_model", lm_layers="model.text_model.layers", lm_head="lm_head",
                        image_token_ids=token_ids(model.config, "image_token_id"),
                        lm_block=DECODER, vision_block=CLIP_VISION, embed="model.text_model.embed_tokens",
                        final_norm="model.text_model.norm")


register_adapter(Idefics3Adapter())
