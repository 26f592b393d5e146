"""Text-only models: decoder LMs (Llama, Qwen2, Mistral, ...) and encoders (BERT-like). Every token is text."""
from __future__ import annotations

from torch import nn

from ..errors import UnsupportedModel
from .base import Adapter, ModelMap, decoder_ends, find_block_list, register_adapter
from .blocks import infer_block_layout


class GenericAdapter(Adapter):
    family = "generic"
    model_types = ("llama", "qwen2", "qwen3", "mistral", "phi3", "gemma", "gemma2", "bert", "roberta")

    def describe(self, model: nn.Module) -> ModelMap:
        names = dict(model.named_modules())
        head = next((n for n in ("lm_head", "cls", "classifier") if n in names), None)
        layers = find_block_list(model, "")
        if layers is None:
            raise UnsupportedModel(f"{type(model).__name__} has no stack of layers (nn.ModuleList); it cannot be converted")
        # One adapter serves decoders and encoders: the block layout is the known one the blocks match.
        block = infer_block_layout(model.get_submodule(layers)[0])
        return ModelMap(family=self.family, model=model, lm="", lm_layers=layers, lm_head=head, lm_block=block,
                        **decoder_ends(model, layers))


register_adapter(GenericAdapter())
