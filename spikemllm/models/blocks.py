"""Inside a transformer block: which norm feeds which projections, which projections write the residual stream,
where attention is. The methods that edit blocks (SmoothQuant, rotation) and spiking attention ask a
:class:`~spikemllm.models.ModelMap` for this (``mm.block_layout("lm")``, ``mm.attention_modules()``); they never
name a family's modules themselves.

A family adapter declares its blocks with the layouts below (or its own); a user overrides them per model with
``declare_layout(model, {..., "lm_block": {...}})`` or ``dataclasses.replace(describe(model), lm_block=...)``.
A model with no declared block layout gets :func:`infer_block_layout`: the first known layout whose module
names all exist in its first block, else a guess from class names (attention classes, norm classes), the one
place such a guess is made.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from torch import nn

from ..errors import ConfigError

__all__ = ["BlockLayout", "KNOWN_BLOCKS", "infer_block_layout"]


@dataclass(frozen=True)
class BlockLayout:
    """Module names relative to one block of a stack.

    Attributes:
        norms: ``(norm, readers)`` pairs: a norm and the projections that read its output alone. SmoothQuant
            may absorb its factors into such a norm; rotation folds the norm's weight into its readers.
        writers: projections whose outputs are added into the residual stream (rotation rotates their outputs).
        attention: the block's attention modules (spiking attention tags them).
        rms_norm: the norms are RMSNorm-like (``g * x / rms(x)``), so the residual stream can be rotated
            offline (rotation still checks it numerically before relying on it).
        name: a label for messages.
    """

    norms: tuple[tuple[str, tuple[str, ...]], ...] = ()
    writers: tuple[str, ...] = ()
    attention: tuple[str, ...] = ()
    rms_norm: bool = False
    name: str = "custom"

    def __post_init__(self) -> None:
        try:
            norms = tuple((str(n), tuple(str(r) for r in readers)) for n, readers in self.norms)
        except (TypeError, ValueError):
            raise ConfigError(f"block layout 'norms' must be a list of [norm, [readers...]] pairs, got "
                              f"{self.norms!r}") from None
        object.__setattr__(self, "norms", norms)
        for f in ("writers", "attention"):
            v = getattr(self, f)
            if isinstance(v, str) or not all(isinstance(x, str) for x in v):
                raise ConfigError(f"block layout {f!r} must be a list of module names, got {v!r}")
            object.__setattr__(self, f, tuple(v))

    @classmethod
    def from_dict(cls, data: "Mapping[str, Any] | BlockLayout") -> "BlockLayout":
        if isinstance(data, BlockLayout):
            return data
        if not isinstance(data, Mapping):
            raise ConfigError(f"a block layout is a mapping (norms, writers, attention, rms_norm), got {data!r}")
        known = {"norms", "writers", "attention", "rms_norm", "name"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown block layout field(s) {unknown}; allowed: {', '.join(sorted(known))}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        return {"norms": [[n, list(r)] for n, r in self.norms], "writers": list(self.writers),
                "attention": list(self.attention), "rms_norm": self.rms_norm, "name": self.name}

    @property
    def norm_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.norms)

    @property
    def readers(self) -> tuple[str, ...]:
        return tuple(r for _, rs in self.norms for r in rs)

    def names(self) -> tuple[str, ...]:
        """Every module name the layout mentions."""
        return self.norm_names + self.readers + self.writers + self.attention

    def missing_in(self, block: nn.Module) -> list[str]:
        """Names of this layout that ``block`` does not have."""
        have = {n for n, _ in block.named_modules()}
        return [n for n in self.names() if n not in have]


def _qkv(prefix: str, names: tuple[str, ...] = ("q_proj", "k_proj", "v_proj")) -> tuple[str, ...]:
    return tuple(f"{prefix}.{n}" for n in names)


#: Pre-norm decoder blocks of Llama-style LMs (Llama, Qwen2, Mistral, ...).
DECODER = BlockLayout(norms=(("input_layernorm", _qkv("self_attn")),
                             ("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj"))),
                      writers=("self_attn.o_proj", "mlp.down_proj"), attention=("self_attn",), rms_norm=True,
                      name="decoder")
#: CLIP / SigLIP vision encoder blocks.
CLIP_VISION = BlockLayout(norms=(("layer_norm1", _qkv("self_attn")), ("layer_norm2", ("mlp.fc1",))),
                          writers=("self_attn.out_proj", "mlp.fc2"), attention=("self_attn",), name="clip-vision")
#: InternViT blocks.
INTERN_VISION = BlockLayout(norms=(("layernorm_before", _qkv("attention")), ("layernorm_after", ("mlp.fc1",))),
                            writers=("attention.projection_layer", "mlp.fc2"), attention=("attention",),
                            name="intern-vision")
#: Qwen2-VL vision blocks (fused qkv, fc1/fc2 MLP).
QWEN2_VISION = BlockLayout(norms=(("norm1", ("attn.qkv",)), ("norm2", ("mlp.fc1",))),
                           writers=("attn.proj", "mlp.fc2"), attention=("attn",), name="qwen2-vision")
#: Qwen2.5-VL vision blocks (fused qkv, gated MLP, RMSNorm).
QWEN25_VISION = BlockLayout(norms=(("norm1", ("attn.qkv",)), ("norm2", ("mlp.gate_proj", "mlp.up_proj"))),
                            writers=("attn.proj", "mlp.down_proj"), attention=("attn",), rms_norm=True,
                            name="qwen2.5-vision")
#: Post-norm encoder blocks (BERT-like): the norm after attention feeds the MLP input and the residual.
POST_NORM_ENCODER = BlockLayout(norms=(("attention.output.LayerNorm", ("intermediate.dense",)),
                                       ("output.LayerNorm", ())),
                                writers=("attention.output.dense", "output.dense"),
                                attention=("attention", "attention.self"), name="post-norm-encoder")

KNOWN_BLOCKS: tuple[BlockLayout, ...] = (DECODER, QWEN25_VISION, QWEN2_VISION, CLIP_VISION, INTERN_VISION,
                                         POST_NORM_ENCODER)


def infer_block_layout(block: nn.Module) -> BlockLayout:
    """The first of :data:`KNOWN_BLOCKS` that ``block`` has every module of; else a guess from class names
    (attention: classes named ``*Attention``; norms: classes named ``*Norm*``, readers unknown)."""
    for lay in KNOWN_BLOCKS:
        if not lay.missing_in(block):
            return lay
    attention, norms = [], []
    for n, m in block.named_modules():
        cls = type(m).__name__
        if n and cls.endswith("Attention"):
            attention.append(n)
        if n and hasattr(m, "weight") and "norm" in cls.lower():
            norms.append((n, ()))
    return BlockLayout(norms=tuple(norms), attention=tuple(attention), name="inferred")
