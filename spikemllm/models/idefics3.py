"""Idefics3 and SmolVLM: SigLIP-style ``vision_model``, ``connector`` (pixel shuffle + projection), ``text_model``."""
from __future__ import annotations

from .base import PathAdapter, register_adapter
from .blocks import CLIP_VISION, DECODER


class Idefics3Adapter(PathAdapter):
    family = "idefics3"
    model_types = ("idefics3", "smolvlm")
    paths = dict(vision="model.vision_model", vision_layers="model.vision_model.encoder.layers",
                 projector="model.connector", lm="model.text_model", lm_layers="model.text_model.layers",
                 lm_head="lm_head", lm_block=DECODER, vision_block=CLIP_VISION)


register_adapter(Idefics3Adapter())
