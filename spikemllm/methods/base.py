"""Quantization methods as plug-ins: a registry by name, a shared context, and the ordering rule.

A method owns math only. It reads and edits a :class:`QuantContext`:

* ``transform`` methods (SmoothQuant, Hadamard rotation) change the float model so that it computes the same
  function with friendlier activations (migrating scales into norms, fusing rotations into weights) and may add
  an online ``input_transform`` in front of a layer's activation quantizer;
* ``weights`` methods (RTN, GPTQ) choose the integer weight codes and scales of the target layers.

Transforms must come before weight methods (``["rotation", "gptq"]`` is QuaRot). Layers that no weight method
covered get RTN at the end. The calibration pipeline (:mod:`spikemllm.calibrate`) owns data flow; methods ask it
for statistics through ``ctx.calib``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from torch import nn

from ..config import SpikeConfig
from ..models.base import ModelMap
from ..quant import QuantSpec, Quantized

KINDS = ("transform", "weights")


@dataclass
class QuantContext:
    """What methods see and fill in during :func:`spikemllm.convert`."""

    model: nn.Module
    model_map: ModelMap
    config: SpikeConfig
    targets: dict[str, nn.Linear]
    calib: list[dict[str, Any]] | None = None
    weights: dict[str, Quantized] = field(default_factory=dict)
    input_transforms: dict[str, nn.Module] = field(default_factory=dict)
    log: Callable[[str], None] = print
    progress: bool = True  # methods show progress bars unless their options or convert(progress=False) say not

    def weight_spec(self) -> QuantSpec:
        c = self.config
        return QuantSpec(bits=c.weight_bits, symmetric=True, granularity=c.weight_granularity,
                         group_size=c.group_size)

    def options(self, method: str) -> dict[str, Any]:
        return dict(self.config.method_options.get(method, {}))


class Method:
    """Base class: set ``name`` and ``kind``, implement :meth:`apply`."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "weights"
    needs_calibration: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        self.options = options

    def apply(self, ctx: QuantContext) -> None:
        raise NotImplementedError


_METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: register a method under ``cls.name``; duplicates are refused."""
    if not cls.name or cls.kind not in KINDS:
        raise ValueError(f"method {cls.__name__} needs a name and a kind in {KINDS}")
    if cls.name in _METHODS:
        raise ValueError(f"method {cls.name!r} is already registered ({_METHODS[cls.name].__name__})")
    _METHODS[cls.name] = cls
    return cls


def registered_methods() -> list[str]:
    return sorted(_METHODS)


def get_method(name: str) -> type[Method]:
    if name not in _METHODS:
        raise ValueError(f"quantization method {name!r} is unknown; registered: {', '.join(registered_methods())}")
    return _METHODS[name]


def validate_order(names: tuple[str, ...] | list[str]) -> list[type[Method]]:
    """Check names exist, appear once, and transforms precede weight methods; return the classes."""
    classes = [get_method(n) for n in names]
    if len(set(names)) != len(names):
        raise ValueError(f"method list {list(names)} repeats a method; each may appear once")
    seen_weights = None
    for c in classes:
        if c.kind == "weights":
            if seen_weights is not None:
                raise ValueError(f"methods {seen_weights!r} and {c.name!r} both choose weights; use one of them")
            seen_weights = c.name
        elif seen_weights is not None:
            raise ValueError(f"transform {c.name!r} comes after weight method {seen_weights!r}; "
                             f"put transforms first, e.g. [{c.name!r}, {seen_weights!r}]")
    return classes


def apply_methods(ctx: QuantContext) -> None:
    """Run the config's methods in order, then RTN for any target layer left without weights."""
    for cls in validate_order(ctx.config.methods):
        opts = ctx.options(cls.name)
        if "progress" in getattr(cls, "OPTIONS", ()):
            opts.setdefault("progress", ctx.progress)
        cls(**opts).apply(ctx)
    missing = [n for n in ctx.targets if n not in ctx.weights]
    if missing:
        get_method("rtn")().apply(ctx)
