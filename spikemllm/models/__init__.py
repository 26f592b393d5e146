"""Family adapters: per-model knowledge, found by ``config.model_type``.

An adapter's :class:`ModelMap` says where the parts are (vision tower, projector, LM, block stacks) and what a block
holds (:class:`BlockLayout`: norm -> projections, residual writers, attention). Methods and spikify read only the
map; a user overrides it per model with :func:`declare_layout`.
"""
from . import generic, idefics3, internvl, llava, qwen2_vl  # noqa: F401  (registration)
from .base import Adapter, ModelMap, describe, get_adapter, register_adapter, supported_model_types
from .blocks import BlockLayout, infer_block_layout
from .layout import Layout, declare_layout, load_layout, register_layout
from .tiny import VLM_FAMILIES, tiny_model

__all__ = ["Adapter", "ModelMap", "BlockLayout", "infer_block_layout", "Layout", "declare_layout", "describe",
           "get_adapter", "load_layout", "register_adapter", "register_layout", "supported_model_types", "tiny_model",
           "VLM_FAMILIES"]
