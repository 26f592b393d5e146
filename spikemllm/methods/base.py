"""Quantization methods as plug-ins: a registry by name, a shared context, and the ordering rule.

A method owns math only. It reads and edits a :class:`QuantContext`:

* ``transform`` methods (SmoothQuant, Hadamard rotation) change the float model so that it computes the same
  function with friendlier activations (migrating scales into norms, fusing rotations into weights) and may add
  an online ``input_transform`` in front of a layer's activation quantizer;
* ``weights`` methods (RTN, GPTQ) choose the integer weight codes and scales of the target layers.

Transforms must come before weight methods (``["rotation", "gptq"]`` is QuaRot). Layers that no weight method
covered get RTN at the end. The calibration pipeline (:mod:`spikemllm.calibrate`) owns data flow; methods ask it
for statistics through ``ctx.calib``.

Options are typed: each method declares ``Options``, a frozen dataclass, in its registration header
(``@declare_method("gptq", "weights", GPTQOptions, needs_calibration=True)``). A
:class:`~spikemllm.SpikeConfig` checks ``method_options`` against them when it is built (:func:`parse_options`):
an unknown key, a value of the wrong type or an options entry for a method the config does not run is a
:class:`~spikemllm.errors.ConfigError` naming the key.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Union

from torch import nn

from ..errors import ConfigError
from ..logs import get_logger
from ..models.base import ModelMap
from ..quant import QuantSpec, Quantized

if TYPE_CHECKING:
    from ..config import SpikeConfig

KINDS = ("transform", "weights")
_log = get_logger(__name__)


@dataclass(frozen=True)
class NoOptions:
    """Options of a method that takes none."""


def _type_ok(value: Any, hint: Any) -> bool:
    """``value`` fits the annotation ``hint`` (plain types, ``X | None``); bools are not numbers here."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_type_name(h) for h in typing.get_args(hint))
    return "None" if hint is type(None) else getattr(hint, "__name__", str(hint))


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
    log: Callable[[str], None] = _log.info
    progress: bool = True  # methods show progress bars unless their options or convert(progress=False) say not

    def weight_spec(self) -> QuantSpec:
        c = self.config
        return QuantSpec(bits=c.weight_bits, symmetric=True, granularity=c.weight_granularity,
                         group_size=c.group_size)

    def options(self, method: str) -> dict[str, Any]:
        return dict(self.config.method_options.get(method, {}))


class Method:
    """Base class: set ``name``, ``kind`` and ``Options`` (a frozen dataclass), implement :meth:`apply`.

    ``self.opts`` is the parsed ``Options``; ``self.options`` the keyword arguments as given.
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "weights"
    needs_calibration: ClassVar[bool] = False
    Options: ClassVar[type] = NoOptions

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.opts = parse_options(type(self), options)

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


def declare_method(name: str, kind: str, options: type = NoOptions, *,
                   needs_calibration: bool = False) -> Callable[[type[Method]], type[Method]]:
    """Class decorator: a method's header in one line (its ``name``, ``kind``, ``Options`` dataclass and whether
    it needs calibration data), then :func:`register_method`. Why: every method declared these four class
    attributes by hand, in the same few lines; one call says them in the same order everywhere."""

    def declare(cls: type[Method]) -> type[Method]:
        cls.name, cls.kind, cls.Options, cls.needs_calibration = name, kind, options, needs_calibration
        return register_method(cls)

    return declare


def parse_options(cls: type[Method], raw: Mapping[str, Any] | None) -> Any:
    """``cls.Options`` built from ``raw``; ConfigError naming an unknown key or a value of the wrong type."""
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise ConfigError(f"method_options[{cls.name!r}] must be a dict of options, got {type(raw).__name__}")
    opt_fields = {f.name: f for f in dataclasses.fields(cls.Options)}
    hints = typing.get_type_hints(cls.Options)
    for key, value in raw.items():
        if key not in opt_fields:
            allowed = ", ".join(opt_fields) or "none"
            raise ConfigError(f"unknown {cls.name} option {key!r} in method_options[{cls.name!r}]; allowed: {allowed}")
        if not _type_ok(value, hints[key]):
            raise ConfigError(f"method_options[{cls.name!r}][{key!r}]={value!r} is invalid; allowed: "
                              f"{_type_name(hints[key])}")
    try:
        return cls.Options(**raw)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"method_options[{cls.name!r}]: {e}") from None


def check_method_options(methods: tuple[str, ...], options: Mapping[str, Any]) -> None:
    """What :class:`~spikemllm.SpikeConfig` checks: the method list is valid and every options entry names one
    of its methods and parses (see :func:`parse_options`)."""
    validate_order(methods)
    for name in options:
        if name not in methods:
            raise ConfigError(f"method_options has an entry {name!r}, which names no method of method="
                              f"{list(methods)}; allowed keys: {', '.join(methods)}")
    for name in methods:
        parse_options(get_method(name), options.get(name, {}))


def registered_methods() -> list[str]:
    return sorted(_METHODS)


def get_method(name: str) -> type[Method]:
    if name not in _METHODS:
        raise ConfigError(f"quantization method {name!r} is unknown; registered: {', '.join(registered_methods())}")
    return _METHODS[name]


def validate_order(names: tuple[str, ...] | list[str]) -> list[type[Method]]:
    """Check names exist, appear once, and transforms precede weight methods; return the classes."""
    classes = [get_method(n) for n in names]
    if len(set(names)) != len(names):
        raise ConfigError(f"method list {list(names)} repeats a method; each may appear once")
    seen_weights = None
    for c in classes:
        if c.kind == "weights":
            if seen_weights is not None:
                raise ConfigError(f"methods {seen_weights!r} and {c.name!r} both choose weights; use one of them")
            seen_weights = c.name
        elif seen_weights is not None:
            raise ConfigError(f"transform {c.name!r} comes after weight method {seen_weights!r}; "
                              f"put transforms first, e.g. [{c.name!r}, {seen_weights!r}]")
    return classes


def apply_methods(ctx: QuantContext, *, rtn: bool = True) -> None:
    """Run the config's methods in order, then RTN for any target layer left without weights.

    ``rtn=False`` leaves RTN out (as a listed method and as the fallback): :func:`spikemllm.convert` quantizes
    those layers one at a time in its spikify pass instead, with the same codes, so it never holds them all.
    """
    for cls in validate_order(ctx.config.methods):
        if not rtn and cls.name == "rtn":
            continue
        opts = ctx.options(cls.name)
        if "progress" in {f.name for f in dataclasses.fields(cls.Options)}:
            opts.setdefault("progress", ctx.progress)
        cls(**opts).apply(ctx)
    missing = [n for n in ctx.targets if n not in ctx.weights]
    if rtn and missing:
        get_method("rtn")().apply(ctx)
