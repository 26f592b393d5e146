"""What an adapter tells the rest of spikemllm about a model, and the registry that finds the adapter.

Per-family knowledge (attribute paths, image-token ids, the modules inside a block) lives only in the adapter
files of this package; the core asks a :class:`ModelMap` plain questions: where is the vision tower, which
decoder layers are there, which tokens are vision tokens, which norm feeds which projections
(:meth:`ModelMap.block_layout`), where attention is (:meth:`ModelMap.attention_modules`). The hardware model asks
the adapter for a config's shape (:func:`shape_of_config`) in the same way.

    model --describe()--> ModelMap (adapter or declared layout) --> select targets, calibrate, methods, spikify
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from ..errors import ConfigError
from .blocks import BlockLayout, infer_block_layout
from .shape import ModelShape, decoder_shape

#: Where a module sits in a model (``ModelMap.region_of``); spiking layers run vision tokens only in the first two.
MODEL_REGIONS = ("vision", "projector", "lm")


@dataclass
class ModelMap:
    """Where things live in one model, as module-name prefixes (``""`` is the root)."""

    family: str
    model: nn.Module
    lm: str
    lm_layers: str
    vision: str | None = None
    vision_layers: str | None = None
    projector: str | None = None
    lm_head: str | None = None
    image_token_ids: tuple[int, ...] = ()
    vision_mask_fn: Callable[[dict[str, Any]], torch.Tensor | None] | None = field(default=None, repr=False)
    lm_block: BlockLayout | None = None       # None: inferred from the first block (see models.blocks)
    vision_block: BlockLayout | None = None
    embed: str | None = None                  # the LM's token embedding (rotation rotates it)
    final_norm: str | None = None             # the LM's last norm, before lm_head

    def module(self, name: str | None) -> nn.Module | None:
        return None if name is None else (self.model if name == "" else self.model.get_submodule(name))

    @staticmethod
    def _under(name: str, prefix: str | None) -> bool:
        return prefix is not None and (prefix == "" or name == prefix or name.startswith(prefix + "."))

    def region_of(self, name: str) -> str | None:
        """``vision`` (vision tower), ``projector``, ``lm`` or None (e.g. the LM head)."""
        if self._under(name, self.lm_head):
            return None
        if self._under(name, self.projector):
            return "projector"
        if self._under(name, self.vision):
            return "vision"
        if self._under(name, self.lm):
            return "lm"
        return None

    def layer_of(self, name: str) -> tuple[str, int] | None:
        """``("lm", i)`` or ``("vision", i)`` for a module inside decoder/vision block ``i``."""
        for kind, prefix in (("vision", self.vision_layers), ("lm", self.lm_layers)):
            if prefix is not None and name.startswith(prefix + "."):
                head = name[len(prefix) + 1:].split(".", 1)[0]
                if head.isdigit():
                    return kind, int(head)
        return None

    def layers(self, kind: str = "lm") -> nn.ModuleList:
        prefix = self.lm_layers if kind == "lm" else self.vision_layers
        if prefix is None:
            raise ConfigError(f"this {self.family} model has no {kind} layers")
        return self.model.get_submodule(prefix)

    def num_layers(self, kind: str = "lm") -> int:
        prefix = self.lm_layers if kind == "lm" else self.vision_layers
        return 0 if prefix is None else len(self.model.get_submodule(prefix))

    def block_layout(self, kind: str = "lm") -> BlockLayout | None:
        """The :class:`BlockLayout` of the ``kind`` stack: declared by the adapter/layout, else inferred."""
        declared = self.lm_block if kind == "lm" else self.vision_block
        if declared is not None:
            return declared
        if self.num_layers(kind) == 0:
            return None
        return infer_block_layout(self.layers(kind)[0])

    def attention_modules(self) -> list[str]:
        """Names of the attention modules of the vision and LM blocks (from each stack's block layout)."""
        out = []
        for kind in ("vision", "lm"):
            lay = self.block_layout(kind)
            if lay is None:
                continue
            prefix = self.vision_layers if kind == "vision" else self.lm_layers
            for i, block in enumerate(self.layers(kind)):
                have = dict(block.named_modules())
                out += [f"{prefix}.{i}.{a}" for a in lay.attention if a in have]
        return out

    def vision_mask(self, inputs: dict[str, Any]) -> torch.Tensor | None:
        """Boolean ``[B, S]`` mask of vision tokens for a forward call's keyword inputs (None: all text)."""
        if self.vision_mask_fn is not None:
            return self.vision_mask_fn(inputs)
        ids = inputs.get("input_ids")
        if ids is None or not self.image_token_ids:
            return None
        return torch.isin(ids, torch.tensor(self.image_token_ids, device=ids.device))


def decoder_ends(model: nn.Module, lm_layers: str | None) -> dict[str, str]:
    """``embed`` and ``final_norm`` of a Llama-style decoder: ``embed_tokens`` and ``norm`` beside its layers
    (only those that exist)."""
    if not lm_layers:
        return {}
    parent = lm_layers.rsplit(".", 1)[0] if "." in lm_layers else ""
    names = {n for n, _ in model.named_modules()}
    out = {}
    for key, leaf in (("embed", "embed_tokens"), ("final_norm", "norm")):
        name = f"{parent}.{leaf}" if parent else leaf
        if name in names:
            out[key] = name
    return out


def find_block_list(model: nn.Module, prefix: str) -> str | None:
    """Name of the longest ``nn.ModuleList`` under ``prefix``: the stack of transformer blocks."""
    root = model if prefix == "" else model.get_submodule(prefix)
    best, best_len = None, 0
    for name, m in root.named_modules():
        if isinstance(m, nn.ModuleList) and len(m) > best_len:
            best, best_len = name, len(m)
    if best is None:
        return None
    return best if prefix == "" else f"{prefix}.{best}"


class Adapter:
    """One family: subclasses set ``model_types`` (and, for models without a ``config.model_type``,
    ``class_names``) and implement :meth:`describe`."""

    family: str = ""
    model_types: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()

    def describe(self, model: nn.Module) -> ModelMap:
        raise NotImplementedError

    def model_shape(self, config: Any, name: str | None = None) -> ModelShape:
        """The family's shape from its transformers ``config`` (for the hardware model and energy counting by
        shape): by default its language model only; a family whose vision tower should count overrides this."""
        return decoder_shape(config, name)


class PathAdapter(Adapter):
    """An adapter that is a declaration: fixed module names (``paths``: ModelMap fields such as ``vision``,
    ``lm_layers``, ``lm_block``), the config attributes holding image token ids (``token_attrs``); the LM's
    ``embed`` and ``final_norm`` are found beside ``lm_layers`` unless ``paths`` names them."""

    paths: dict[str, Any] = {}
    token_attrs: tuple[str, ...] = ("image_token_id",)

    def describe(self, model: nn.Module) -> ModelMap:
        paths = {**decoder_ends(model, self.paths.get("lm_layers")), **self.paths}
        return ModelMap(family=self.family, model=model, image_token_ids=token_ids(model.config, *self.token_attrs),
                        **paths)


_REGISTRY: dict[str, Adapter] = {}
_BY_CLASS: dict[str, Adapter] = {}


def register_adapter(adapter: Adapter) -> Adapter:
    """Register an adapter for its ``model_types`` and ``class_names``; a second adapter for the same type or
    class is refused (nothing is registered then)."""
    for key, table, what in [(mt, _REGISTRY, "model_type") for mt in adapter.model_types] + \
            [(cn, _BY_CLASS, "model class") for cn in adapter.class_names]:
        if key in table:
            raise ValueError(f"{what} {key!r} already has an adapter ({table[key].family}); refusing a second")
    _REGISTRY.update({mt: adapter for mt in adapter.model_types})
    _BY_CLASS.update({cn: adapter for cn in adapter.class_names})
    return adapter


def supported_model_types() -> list[str]:
    return sorted(_REGISTRY)


def get_adapter(model: nn.Module) -> Adapter:
    """The adapter for ``model``: by ``config.model_type``, then by class name; raises UnsupportedModel."""
    cfg = getattr(model, "config", None)
    mt = getattr(cfg, "model_type", None)
    if mt in _REGISTRY:
        return _REGISTRY[mt]
    if type(model).__name__ in _BY_CLASS:
        return _BY_CLASS[type(model).__name__]
    from ..errors import UnsupportedModel

    raise UnsupportedModel(f"unsupported model (model_type={mt!r}); supported families: "
                           f"{', '.join(supported_model_types())}. For another model ({type(model).__name__}), "
                           "declare where its vision "
                           "tower, projector, language model and blocks are: --layout FILE (JSON/YAML) or "
                           "spikemllm.models.declare_layout(model, ...); see spikemllm.models.layout")


def shape_of_config(config: Any, name: str | None = None) -> ModelShape:
    """The :class:`~spikemllm.models.shape.ModelShape` of a transformers ``config``, by its family's adapter
    (:meth:`Adapter.model_shape`); a ``model_type`` no adapter knows is read as a plain decoder LM."""
    adapter = _REGISTRY.get(getattr(config, "model_type", None))
    return adapter.model_shape(config, name) if adapter is not None else decoder_shape(config, name)


def describe(model: nn.Module) -> ModelMap:
    """The :class:`ModelMap` of ``model``: from a layout declared on it (:func:`~spikemllm.models.layout.
    declare_layout`), else from its family adapter."""
    layout = getattr(model, "_spikemllm_layout", None)
    if layout is not None:
        return layout.model_map(model)
    return get_adapter(model).describe(model)


def token_ids(config: Any, *names: str) -> tuple[int, ...]:
    """Integer token ids named ``names`` on ``config`` (missing or None ones are skipped)."""
    out = []
    for n in names:
        v = getattr(config, n, None)
        if isinstance(v, int):
            out.append(v)
    return tuple(dict.fromkeys(out))
