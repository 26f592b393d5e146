"""Online input transforms that sit in front of a SpikeLinear's activation quantizer (e.g. a Hadamard rotation).

They are part of what a converted model computes, so :func:`spikemllm.save` must be able to rebuild them without
pickling: a transform class registers a name, describes its construction with ``to_spec()`` (JSON), and keeps its
tensors as buffers (saved with the model's state).
"""
from __future__ import annotations

from typing import Any

from torch import nn

_TRANSFORMS: dict[str, type["InputTransform"]] = {}


class InputTransform(nn.Module):
    """Base class: subclasses set ``kind``, implement ``forward`` and ``to_spec``/``from_spec``."""

    kind: str = ""

    def to_spec(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "InputTransform":
        raise NotImplementedError


def register_transform(cls: type[InputTransform]) -> type[InputTransform]:
    if not cls.kind:
        raise ValueError(f"{cls.__name__} needs a kind")
    if cls.kind in _TRANSFORMS and _TRANSFORMS[cls.kind] is not cls:
        raise ValueError(f"input transform kind {cls.kind!r} is already registered")
    _TRANSFORMS[cls.kind] = cls
    return cls


def transform_spec(t: nn.Module) -> dict[str, Any]:
    if not isinstance(t, InputTransform):
        raise ValueError(f"input transform {type(t).__name__} cannot be saved: subclass "
                         "spikemllm.nn.transforms.InputTransform and register it")
    return {"kind": t.kind, **t.to_spec()}


def build_transform(spec: dict[str, Any]) -> InputTransform:
    kind = spec.get("kind")
    if kind not in _TRANSFORMS:
        raise ValueError(f"the checkpoint needs input transform {kind!r}, which is not registered here; "
                         f"registered: {', '.join(sorted(_TRANSFORMS)) or 'none'} (import the module defining it)")
    return _TRANSFORMS[kind].from_spec({k: v for k, v in spec.items() if k != "kind"})
