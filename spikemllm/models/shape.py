"""A model by shape: its linear layers and attention as numbers, read from a transformers config.

Why here and not in :mod:`spikemllm.hardware`: which config fields hold a vision tower's size, and what a family
merges into one image token, is per-family knowledge, and that lives in the adapters of this package. The
accelerator model, the GPU roofline and shape-based energy counting take a :class:`ModelShape` and ask nothing
about families:

    config --shape_of_config() (models.base: the family adapter's model_shape)--> ModelShape --> hardware, energy

This module holds the family-neutral parts: the shape dataclasses, the reader of a standard decoder LM's
config (:func:`decoder_shape`, which every adapter starts from) and the registry of named workload shapes
(``spikemllm hw --workload NAME``), filled by the adapter modules.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import ConfigError

__all__ = ["LinearOp", "AttentionShape", "ModelShape", "decoder_shape", "register_workload", "get_workload",
           "WORKLOADS", "PAPER_WORKLOAD", "KV_PROJECTIONS"]

#: Last parts of the names of the linears whose outputs fill the KV cache: the key and value projections of the
#: decoder blocks the adapters declare (``models.blocks.DECODER``; also the names :func:`decoder_shape` gives).
#: Energy counting prices a KV-cache write and read for the layers so named.
KV_PROJECTIONS = ("k_proj", "v_proj")


@dataclass(frozen=True)
class LinearOp:
    """One linear layer by shape; ``repeat`` identical copies (e.g. one per decoder block)."""

    name: str
    in_features: int
    out_features: int
    repeat: int = 1

    @property
    def params(self) -> int:
        return self.in_features * self.out_features * self.repeat


@dataclass(frozen=True)
class AttentionShape:
    """Multi-head attention of ``layers`` blocks: heads, key/value heads (GQA), head size, causal or not."""

    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    causal: bool = True

    def __post_init__(self) -> None:
        if self.heads % self.kv_heads:
            raise ConfigError(f"heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")


@dataclass(frozen=True)
class ModelShape:
    """An MLLM by shape: vision tower (per patch), projector (per merged image token), language model."""

    name: str
    hidden: int
    intermediate: int
    vocab: int
    lm_linears: tuple[LinearOp, ...]
    lm_attention: AttentionShape
    lm_head: LinearOp
    vision_linears: tuple[LinearOp, ...] = ()
    vision_attention: AttentionShape | None = None
    projector_linears: tuple[LinearOp, ...] = ()
    patch_size: int = 14
    merge: int = 4  # vision patches per LM image token (a 2x2 spatial merge)

    def params(self, part: str) -> int:
        ops = {"lm": self.lm_linears + (self.lm_head,), "vision": self.vision_linears,
               "projector": self.projector_linears}[part]
        return sum(op.params for op in ops)


def decoder_shape(config: Any, name: str | None = None) -> ModelShape:
    """The language model of ``config`` (its ``text_config`` when it has one) by the standard transformers
    decoder fields (hidden, intermediate, heads, KV heads, head size, layers, vocabulary), without a vision tower.

    An adapter whose family has a vision tower the shape should count adds it to this (see
    :meth:`spikemllm.models.Adapter.model_shape`).
    """
    text = getattr(config, "text_config", None) or config
    h, inter = text.hidden_size, text.intermediate_size
    heads, layers = text.num_attention_heads, text.num_hidden_layers
    kv = getattr(text, "num_key_value_heads", None) or heads
    hd = getattr(text, "head_dim", None) or h // heads
    lm = (LinearOp("q_proj", h, heads * hd, layers), LinearOp("k_proj", h, kv * hd, layers),
          LinearOp("v_proj", h, kv * hd, layers), LinearOp("o_proj", heads * hd, h, layers),
          LinearOp("gate_proj", h, inter, layers), LinearOp("up_proj", h, inter, layers),
          LinearOp("down_proj", inter, h, layers))
    return ModelShape(name=name or getattr(config, "model_type", "model"), hidden=h, intermediate=inter,
                      vocab=text.vocab_size, lm_linears=lm,
                      lm_attention=AttentionShape(layers=layers, heads=heads, kv_heads=kv, head_dim=hd, causal=True),
                      lm_head=LinearOp("lm_head", h, text.vocab_size, 1))


#: Named workload shapes (``--workload NAME``): name -> a function building the shape. Adapter modules add theirs.
WORKLOADS: dict[str, Callable[[], ModelShape]] = {}

#: The workload of the paper's hardware comparison, the CLI's default (registered by ``models/qwen2_vl.py``).
PAPER_WORKLOAD = "qwen2-vl-7b"


def register_workload(name: str, build: Callable[[], ModelShape]) -> Callable[[], ModelShape]:
    """Make ``build`` the workload shape called ``name``; a second one under the same name is refused."""
    if name in WORKLOADS:
        raise ValueError(f"workload {name!r} is already registered; refusing a second")
    WORKLOADS[name] = build
    return build


def get_workload(name: str) -> ModelShape:
    try:
        return WORKLOADS[name]()
    except KeyError:
        raise KeyError(f"unknown workload {name!r}; known: {sorted(WORKLOADS)}") from None
