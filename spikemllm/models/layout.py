"""User-declared layouts: convert a model that no shipped adapter knows (MiniCPM-V, Qwen-VL-Chat, your own).

Such models load through ``trust_remote_code`` and have class and ``model_type`` names of their own, so no family
adapter can be looked up for them. The user says where things are instead, in a small JSON or YAML file::

    {"vision": "vpm", "vision_layers": "vpm.encoder.layers", "projector": "resampler",
     "lm": "llm.model", "lm_layers": "llm.model.layers", "lm_head": "llm.lm_head",
     "image_token_id": 0}

and passes it as ``--layout FILE`` (``convert``, ``eval``) or in Python::

    spikemllm.models.declare_layout(model, "layout.yaml")     # or a dict, a Layout or a ModelMap
    spikemllm.convert(model, config)

Fields: ``lm`` (required), ``lm_layers``, ``vision``, ``vision_layers``, ``projector``, ``lm_head`` are module
names (``""`` is the model itself); an omitted ``*_layers`` is found as the longest ``nn.ModuleList`` under its
part. The image-token rule says which language-model tokens are vision tokens, one of: ``image_token_id`` (an
id or a list), ``image_token_id_from_config`` (a config attribute holding it, e.g. ``"image_token_id"``) or
``vision_mask_input`` (a forward keyword whose non-zero entries mark vision tokens, e.g. ``"mm_token_type_ids"``).
``family`` names the layout in messages. Optional: ``lm_block`` / ``vision_block`` say what is inside a block
(``{"norms": [["input_layernorm", ["self_attn.q_proj", ...]], ...], "writers": [...], "attention": [...],
"rms_norm": true}``, see :mod:`spikemllm.models.blocks`; inferred when absent), ``embed`` and ``final_norm`` name
the LM's token embedding and last norm (found beside ``lm_layers`` when absent). Every name is checked against the model before anything is converted:
a field that names no module is refused by name, with the closest module names.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from ..errors import ConfigError
from .base import Adapter, ModelMap, decoder_ends, find_block_list, register_adapter
from .blocks import BlockLayout

__all__ = ["Layout", "declare_layout", "load_layout", "register_layout", "LAYOUT_ATTR"]

LAYOUT_ATTR = "_spikemllm_layout"  # where declare_layout keeps the layout on the model instance
MODULE_FIELDS = ("lm", "lm_layers", "vision", "vision_layers", "projector", "lm_head", "embed", "final_norm")
RULE_FIELDS = ("image_token_id", "image_token_id_from_config", "vision_mask_input")


@dataclass(frozen=True)
class Layout:
    """Where the parts of one model are (module names), and how its vision tokens are recognised."""

    lm: str
    lm_layers: str | None = None
    vision: str | None = None
    vision_layers: str | None = None
    projector: str | None = None
    lm_head: str | None = None
    image_token_id: int | tuple[int, ...] | None = None
    image_token_id_from_config: str | None = None
    vision_mask_input: str | None = None
    embed: str | None = None
    final_norm: str | None = None
    lm_block: BlockLayout | None = None
    vision_block: BlockLayout | None = None
    family: str = "custom"
    model_types: tuple[str, ...] = ()  # register_layout: the config.model_type values it serves
    class_names: tuple[str, ...] = ()  # register_layout: the model class names it serves
    vision_mask_fn: Callable[[dict[str, Any]], torch.Tensor | None] | None = field(default=None, repr=False,
                                                                                   compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.lm, str):
            raise ConfigError(f"layout field 'lm' must be a module name (a string), got {self.lm!r}")
        for f in MODULE_FIELDS[1:] + ("image_token_id_from_config", "vision_mask_input"):
            v = getattr(self, f)
            if v is not None and not isinstance(v, str):
                raise ConfigError(f"layout field {f!r} must be a string, got {v!r}")
        ids = self.image_token_id
        if ids is not None:
            ids = (ids,) if isinstance(ids, int) and not isinstance(ids, bool) else ids
            if not isinstance(ids, (list, tuple)) or not ids or not all(
                    isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
                raise ConfigError(f"layout field 'image_token_id' must be a token id or a list of ids, got "
                                  f"{self.image_token_id!r}")
            object.__setattr__(self, "image_token_id", tuple(ids))
        for f in ("model_types", "class_names"):
            object.__setattr__(self, f, tuple(getattr(self, f)))
        for f in ("lm_block", "vision_block"):
            if getattr(self, f) is not None:
                object.__setattr__(self, f, BlockLayout.from_dict(getattr(self, f)))
        rules = [f for f in RULE_FIELDS if getattr(self, f) is not None]
        if len(rules) > 1:
            raise ConfigError(f"layout gives {len(rules)} image-token rules ({', '.join(rules)}); give one")
        if self.vision is not None and not rules and self.vision_mask_fn is None:
            raise ConfigError("a layout with a vision tower needs an image-token rule, so the language model knows "
                              "which tokens are vision: one of " + ", ".join(RULE_FIELDS))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Layout":
        """A layout from plain data; unknown keys are refused with the list of known ones."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a layout is a mapping of field -> value, got {type(data).__name__}")
        known = [f.name for f in fields(cls) if f.name != "vision_mask_fn"]
        unknown = [k for k in data if k not in known]
        if unknown:
            hints = {k: difflib.get_close_matches(k, known, n=1) for k in unknown}
            raise ConfigError("unknown layout field(s) " + ", ".join(
                f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for k, h in hints.items())
                + f"; known fields: {', '.join(known)}")
        if "lm" not in data:
            raise ConfigError("a layout needs 'lm': the module name of the language model")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields that are set (the Python-only ``vision_mask_fn`` is left out)."""
        d = asdict(self)
        d.pop("vision_mask_fn", None)
        for f in ("lm_block", "vision_block"):
            if getattr(self, f) is not None:
                d[f] = getattr(self, f).to_dict()
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()
                if v is not None and v != () and not (k == "family" and v == "custom")}

    def model_map(self, model: nn.Module) -> ModelMap:
        """The :class:`ModelMap` of ``model``; every name is checked against the model first."""
        names = dict(model.named_modules())
        what = type(model).__name__

        def module(f: str, required: bool = False) -> str | None:
            name = getattr(self, f)
            if name is None:
                if required:
                    raise ConfigError(f"layout field {f!r} is required")
                return None
            if name not in names:
                close = difflib.get_close_matches(name, [n for n in names if n], n=3, cutoff=0.4)
                top = sorted({n.split(".")[0] for n in names if n})
                raise ConfigError(f"layout field {f!r} names {name!r}, which is not a module of {what}"
                                  + (f"; closest: {', '.join(close)}" if close else "")
                                  + f"; its top-level modules are: {', '.join(top)}")
            return name

        def stack(f: str, part: str | None) -> str | None:
            name = module(f)
            if name is None:
                if part is None:
                    return None
                name = find_block_list(model, part)
                if name is None:
                    raise ConfigError(f"layout: no stack of blocks (nn.ModuleList) under {part!r}; name it with "
                                      f"{f!r}")
                return name
            if not isinstance(names[name], (nn.ModuleList, nn.Sequential)) or len(names[name]) == 0:
                raise ConfigError(f"layout field {f!r} names {name!r}, a {type(names[name]).__name__}; it must "
                                  "name the list of blocks (an nn.ModuleList)")
            if part is not None and not (part == "" or name.startswith(part + ".")):
                raise ConfigError(f"layout field {f!r} ({name!r}) is not inside its part {part!r}")
            return name

        lm = module("lm", required=True)
        vision = module("vision")
        lm_layers = stack("lm_layers", lm) or ""
        ends = decoder_ends(model, lm_layers)
        mm = ModelMap(family=self.family, model=model, lm=lm, lm_layers=lm_layers,
                      vision=vision, vision_layers=stack("vision_layers", vision), projector=module("projector"),
                      lm_head=module("lm_head"), image_token_ids=self._token_ids(model),
                      vision_mask_fn=self._mask_fn(), lm_block=self.lm_block, vision_block=self.vision_block,
                      embed=module("embed") or ends.get("embed"),
                      final_norm=module("final_norm") or ends.get("final_norm"))
        return mm

    def _token_ids(self, model: nn.Module) -> tuple[int, ...]:
        if self.image_token_id is not None:
            return tuple(self.image_token_id)
        attr = self.image_token_id_from_config
        if attr is None:
            return ()
        cfg = getattr(model, "config", None)
        for c in (cfg, getattr(cfg, "text_config", None)):
            v = getattr(c, attr, None) if c is not None else None
            if isinstance(v, int) or (isinstance(v, (list, tuple)) and v and all(isinstance(i, int) for i in v)):
                return (v,) if isinstance(v, int) else tuple(v)
        raise ConfigError(f"layout field 'image_token_id_from_config' names {attr!r}, which {type(model).__name__}"
                          "'s config does not hold as a token id; give the id itself with 'image_token_id'")

    def _mask_fn(self) -> Callable[[dict[str, Any]], torch.Tensor | None] | None:
        if self.vision_mask_fn is not None:
            return self.vision_mask_fn
        key = self.vision_mask_input
        if key is None:
            return None

        def mask(inputs: dict[str, Any]) -> torch.Tensor | None:
            v = inputs.get(key)
            return None if v is None else v != 0

        return mask


def load_layout(source: str | Path | Mapping[str, Any] | Layout) -> Layout:
    """A :class:`Layout` from a JSON or YAML file, a mapping, or a Layout (returned as is)."""
    if isinstance(source, Layout):
        return source
    if isinstance(source, Mapping):
        return Layout.from_dict(source)
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"--layout {path}: no such file; write the layout as JSON or YAML (see "
                          "spikemllm.models.layout)")
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:  # noqa: BLE001  (yaml and json raise their own types)
        raise ConfigError(f"--layout {path} is not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'JSON'}: "
                          f"{' '.join(str(e).split())}") from None
    return Layout.from_dict(data)


def _from_model_map(mm: ModelMap) -> Layout:
    return Layout(lm=mm.lm, lm_layers=mm.lm_layers, vision=mm.vision, vision_layers=mm.vision_layers,
                  projector=mm.projector, lm_head=mm.lm_head, image_token_id=mm.image_token_ids or None,
                  family=mm.family, vision_mask_fn=mm.vision_mask_fn, embed=mm.embed, final_norm=mm.final_norm,
                  lm_block=mm.lm_block, vision_block=mm.vision_block)


def declare_layout(model: nn.Module, layout: str | Path | Mapping[str, Any] | Layout | ModelMap) -> ModelMap:
    """Tell spikemllm where things are in ``model`` (checked now); :func:`spikemllm.models.describe` and
    everything built on it (``convert``, calibration, MED) then use this layout for this model instance."""
    lay = _from_model_map(layout) if isinstance(layout, ModelMap) else load_layout(layout)
    mm = lay.model_map(model)  # refuse a wrong name before anything is attached
    object.__setattr__(model, LAYOUT_ATTR, lay)
    return mm


class LayoutAdapter(Adapter):
    """An adapter made from a declared layout (see :func:`register_layout`)."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.family = layout.family
        self.model_types = layout.model_types
        self.class_names = layout.class_names

    def describe(self, model: nn.Module) -> ModelMap:
        return self.layout.model_map(model)


def register_layout(layout: str | Path | Mapping[str, Any] | Layout) -> Adapter:
    """Register a layout for every model of its ``model_types`` / ``class_names`` (refused when an adapter
    already serves one of them), so models of that kind need no per-instance declaration."""
    lay = load_layout(layout)
    if not lay.model_types and not lay.class_names:
        raise ConfigError("register_layout needs 'model_types' or 'class_names' to know which models it serves; "
                          "use declare_layout(model, layout) for one model")
    return register_adapter(LayoutAdapter(lay))
