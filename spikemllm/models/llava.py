"""LLaVA (and LLaVA-NeXT style single-image inputs): CLIP/SigLIP tower, ``multi_modal_projector``, LM."""
from __future__ import annotations

from torch import nn

from .base import Adapter, ModelMap, find_block_list, register_adapter, token_ids
from .blocks import CLIP_VISION, DECODER


class LlavaAdapter(Adapter):
    family = "llava"
    model_types = ("llava", "llava_next")

    def describe(self, model: nn.Module) -> ModelMap:
        # LLaVA configs alias image_token_index to image_token_id.
        ids = token_ids(model.config, "image_token_id", "image_token_index")
        return ModelMap(family=self.family, model=model, vision="model.vision_tower",
                        vision_layers=find_block_list(model, "model.vision_tower"),
                        projector="model.multi_modal_projector", lm="model.language_model",
                        lm_layers="model.language_model.layers", lm_head="lm_head", image_token_ids=ids,
                        lm_block=DECODER, vision_block=CLIP_VISION, embed="model.language_model.embed_tokens",
                        final_norm="model.language_model.norm")


register_adapter(LlavaAdapter())
