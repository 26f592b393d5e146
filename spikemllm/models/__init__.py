"""Family adapters: per-model knowledge, found by ``config.model_type``.

An adapter's :class:`ModelMap` says where the parts are (vision tower, projector, LM, block stacks) and what a block
holds (:class:`BlockLayout`: norm -> projections, residual writers, attention). Methods and spikify read only the
map; a user overrides it per model with :func:`declare_layout`. The adapter also reads its family's config as a
:class:`ModelShape` (:func:`shape_of_config`) for the hardware model and energy counting by shape.
"""
from . import generic, idefics3, internvl, llava, qwen2_vl  # noqa: F401  (registration)
from .base import Adapter, ModelMap, describe, get_adapter, register_adapter, shape_of_config, supported_model_types
from .blocks import BlockLayout, infer_block_layout
from .layout import Layout, declare_layout, load_layout, register_layout
from .shape import PAPER_WORKLOAD, WORKLOADS, ModelShape, get_workload, register_workload
from .tiny import VLM_FAMILIES, tiny_model

__all__ = ["Adapter", "ModelMap", "BlockLayout", "infer_block_layout", "Layout", "declare_layout", "describe",
           "get_adapter", "load_layout", "register_adapter", "register_layout", "supported_model_types", "tiny_model",
           "VLM_FAMILIES", "ModelShape", "shape_of_config", "get_workload", "register_workload", "WORKLOADS",
           "PAPER_WORKLOAD"]
