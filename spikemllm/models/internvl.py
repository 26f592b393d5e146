"""InternVL (transformers-native InternVL2/2.5/3): InternViT tower, ``multi_modal_projector``, Qwen2/Llama LM."""
from __future__ import annotations

from .base import PathAdapter, register_adapter
from .blocks import DECODER, INTERN_VISION


class InternVLAdapter(PathAdapter):
    family = "internvl"
    model_types = ("internvl",)
    paths = dict(vision="model.vision_tower", vision_layers="model.vision_tower.encoder.layer",
                 projector="model.multi_modal_projector", lm="model.language_model",
                 lm_layers="model.language_model.layers", lm_head="lm_head", lm_block=DECODER,
                 vision_block=INTERN_VISION)


register_adapter(InternVLAdapter())
