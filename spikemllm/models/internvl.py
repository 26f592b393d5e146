"""InternVL (transformers-native InternVL2/2.5/3): InternViT tower, ``multi_modal_projector``, Qwen2/Llama LM."""
from __future__ import annotations

from torch import nn

from .base import Adapter, ModelMap, register_adapter, token_ids
from .blocks import DECODER, INTERN_VISION


class InternVLAdapter(Adapter):
    family = "internvl"
    model_types = ("internvl",)

    def describe(self, model: nn.Module) -> ModelMap:
        return ModelMap(family=self.family, model=model, vision="model.vision_tower",
                        vision_layers="model.vision_tower.encoder.layer", projector="model.multi_modal_projector",
                        lm="model.language_model", lm_layers="model.language_model.layers", lm_head="lm_head",
                        image_token_ids=token_ids(model.config, "image_token_id"),
                        lm_block=DECODER, vision_block=INTERN_VISION, embed="model.language_model.embed_tokens",
                        final_norm="model.language_model.norm")


register_adapter(InternVLAdapter())
