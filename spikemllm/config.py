"""SpikeConfig: everything that decides what a converted model computes, as a frozen, JSON-round-trippable value.

    SpikeConfig(coder="tc-lif", timesteps={"vision": 3, "text": 4}, weight_bits=4, method="rtn")

is the paper's headline setting (MSTS Tv/Tt = 3/4, TC-LIF, W4). Timesteps are the currency: the activation
bits of each token follow from its timesteps through :func:`spikemllm.levels.level_spec`.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .atomic import atomic_write_text
from .coding import coder_names, get_coder
from .errors import ConfigError
from .levels import level_spec
from .methods import check_method_options, get_method, parse_options
from .nn.spec import MODES

CONFIG_VERSION = 1
ATTENTION_MODES = ("dense", "spike")
WEIGHT_GRANULARITIES = ("per-channel", "per-group")
_LAYER_KEY = re.compile(r"^(lm|vision)\.(\d+)$")


def _bad(field_name: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"SpikeConfig.{field_name}={value!r} is invalid; allowed values: {allowed}")


def _norm_timesteps(name: str, v: Any, coder: str, signed: bool) -> dict[str, int]:
    if isinstance(v, bool):
        raise _bad(name, v, "an int >= 1 or {'vision': Tv, 'text': Tt}")
    if isinstance(v, int):
        v = {"vision": v, "text": v}
    if not isinstance(v, dict) or set(v) != {"vision", "text"}:
        raise _bad(name, v, "an int >= 1 or {'vision': Tv, 'text': Tt}")
    out = {}
    for k in ("vision", "text"):
        t = v[k]
        if not isinstance(t, int) or isinstance(t, bool) or t < 1:
            raise _bad(name, v, "timesteps are integers >= 1")
        try:
            level_spec(coder, timesteps=t, signed=signed)
        except ValueError as e:
            raise _bad(name, v, str(e)) from None
        out[k] = t
    return out


@dataclass(frozen=True)
class SpikeConfig:
    """How to spikify a model.

    Attributes:
        coder: ``"tc-lif"`` (bit-planes, ``T = bits - 1``) or ``"if"`` (rate coding, ``T = q_max``).
        timesteps: an int (uniform) or ``{"vision": Tv, "text": Tt}`` (MSTS).
        layer_timesteps: per-layer overrides, keys ``"lm.<i>"`` / ``"vision.<i>"`` (decoder / vision block
            index), values like ``timesteps``.
        weight_bits / weight_granularity / group_size: integer weights (symmetric).
        method: quantization method name or list applied in order (see :mod:`spikemllm.methods`).
        method_options: ``{method_name: {option: value}}``; each method declares its options as a frozen
            dataclass (``Method.Options``), checked here: a key naming no method of ``method``, an unknown
            option or a value of the wrong type is a ConfigError. Read them typed with :meth:`options_for`.
        targets / ignore: module-name patterns; ``"re:<regex>"`` is a regex searched in the name, anything else
            matches a module name exactly or as a dotted suffix. Empty ``targets`` means every ``nn.Linear`` of
            the vision tower, the projector and the language model.
        attention: ``"dense"`` (float attention) or ``"spike"`` (Q, K, V and P as spikes).
        act_clip: clipping ratio of per-token activation scales.
        act_group_size: None (one activation scale per token) or a group size (one scale per token and group of
            input features; integer partial sums then run per group). Must equal ``group_size`` when weights are
            per-group.
        signed: signed (ternary) or unsigned (binary, zero point) rate coding; TC-LIF is always signed.
        mode: ``"fused"``, ``"faithful"`` or ``"fakequant"`` (see :class:`spikemllm.SpikeLinear`).
    """

    coder: str = "tc-lif"
    timesteps: Any = field(default_factory=lambda: {"vision": 3, "text": 4})
    layer_timesteps: dict[str, Any] = field(default_factory=dict)
    weight_bits: int = 4
    weight_granularity: str = "per-channel"
    group_size: int = 128
    method: Any = "rtn"
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    targets: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ("lm_head",)
    attention: str = "dense"
    act_clip: float = 1.0
    act_group_size: int | None = None
    signed: bool = True
    mode: str = "fused"
    version: int = CONFIG_VERSION

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731  (frozen: normalise once, here)
        if self.version != CONFIG_VERSION:
            raise _bad("version", self.version, f"{CONFIG_VERSION} (this spikemllm reads config version {CONFIG_VERSION})")
        if not isinstance(self.coder, str) or self.coder not in coder_names():
            raise _bad("coder", self.coder, ", ".join(coder_names()))
        if not isinstance(self.signed, bool) or (get_coder(self.coder).signed_only and not self.signed):
            raise _bad("signed", self.signed, f"True for {self.coder} (signed only); True or False for rate coding")
        set_("timesteps", _norm_timesteps("timesteps", self.timesteps, self.coder, self.signed))
        if not isinstance(self.layer_timesteps, dict):
            raise _bad("layer_timesteps", self.layer_timesteps, "a dict {'lm.<i>' or 'vision.<i>': timesteps}")
        lt = {}
        for k, v in self.layer_timesteps.items():
            if not isinstance(k, str) or not _LAYER_KEY.match(k):
                raise _bad("layer_timesteps", k, "keys 'lm.<i>' or 'vision.<i>'")
            lt[k] = _norm_timesteps(f"layer_timesteps[{k!r}]", v, self.coder, self.signed)
        set_("layer_timesteps", lt)
        if not isinstance(self.weight_bits, int) or isinstance(self.weight_bits, bool) or not 2 <= self.weight_bits <= 8:
            raise _bad("weight_bits", self.weight_bits, "integers 2..8")
        if self.weight_granularity not in WEIGHT_GRANULARITIES:
            raise _bad("weight_granularity", self.weight_granularity, ", ".join(WEIGHT_GRANULARITIES))
        if not isinstance(self.group_size, int) or isinstance(self.group_size, bool) or self.group_size < 1:
            raise _bad("group_size", self.group_size, "integers >= 1")
        if not isinstance(self.method, (str, list, tuple)):
            raise _bad("method", self.method, "a method name or a non-empty list of names")
        methods = [self.method] if isinstance(self.method, str) else list(self.method)
        if not methods or not all(isinstance(m, str) and m for m in methods):
            raise _bad("method", self.method, "a method name or a non-empty list of names")
        set_("method", methods[0] if len(methods) == 1 else tuple(methods))
        if not isinstance(self.method_options, dict) or \
                not all(isinstance(k, str) and isinstance(v, dict) for k, v in self.method_options.items()):
            raise _bad("method_options", self.method_options, "{method_name: {option: value}}")
        check_method_options(self.methods, self.method_options)
        for name in ("targets", "ignore"):
            v = getattr(self, name)
            if not isinstance(v, (str, list, tuple)):
                raise _bad(name, v, "a pattern or a list of module-name patterns")
            v = (v,) if isinstance(v, str) else tuple(v)
            for p in v:
                if not isinstance(p, str) or not p:
                    raise _bad(name, p, "non-empty strings")
                if p.startswith("re:"):
                    try:
                        re.compile(p[3:])
                    except re.error as e:
                        raise _bad(name, p, f"valid regular expressions after 're:' ({e})") from None
            set_(name, v)
        if self.attention not in ATTENTION_MODES:
            raise _bad("attention", self.attention, ", ".join(ATTENTION_MODES))
        if not isinstance(self.act_clip, (int, float)) or isinstance(self.act_clip, bool) or not 0 < self.act_clip <= 1:
            raise _bad("act_clip", self.act_clip, "0 < act_clip <= 1")
        if self.act_group_size is not None and (isinstance(self.act_group_size, bool) or
                                                not isinstance(self.act_group_size, int) or self.act_group_size < 1):
            raise _bad("act_group_size", self.act_group_size, "None or integers >= 1")
        if self.act_group_size is not None and self.weight_granularity == "per-group" and \
                self.act_group_size != self.group_size:
            raise _bad("act_group_size", self.act_group_size, f"None or group_size ({self.group_size}) with per-group weights")
        if self.mode not in MODES:
            raise _bad("mode", self.mode, ", ".join(MODES))

    # --- derived -------------------------------------------------------------------------------------
    @property
    def methods(self) -> tuple[str, ...]:
        return (self.method,) if isinstance(self.method, str) else tuple(self.method)

    def options_for(self, method: str) -> Any:
        """The typed options (``Method.Options`` instance) of ``method``, defaults filled in."""
        return parse_options(get_method(method), self.method_options.get(method, {}))

    def timesteps_for(self, kind: str | None, index: int | None) -> dict[str, int]:
        """``{"vision": Tv, "text": Tt}`` for block ``index`` of ``kind`` (``"lm"``/``"vision"``), overrides applied."""
        if kind is not None and index is not None:
            o = self.layer_timesteps.get(f"{kind}.{index}")
            if o is not None:
                return dict(o)
        return dict(self.timesteps)

    def max_timesteps(self) -> int:
        all_t = [self.timesteps] + list(self.layer_timesteps.values())
        return max(max(t.values()) for t in all_t)

    def replace(self, **changes: Any) -> "SpikeConfig":
        return replace(self, **changes)

    # --- serialisation -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["targets"], d["ignore"] = list(self.targets), list(self.ignore)
        d["method"] = self.method if isinstance(self.method, str) else list(self.method)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SpikeConfig":
        if not isinstance(d, dict):
            raise ConfigError(f"a SpikeConfig is a JSON object of fields, not {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown SpikeConfig fields: {', '.join(sorted(map(str, unknown)))}; allowed: "
                              f"{', '.join(sorted(known))}")
        return cls(**d)

    def to_json(self, path: str | None = None) -> str:
        """The config as JSON text; with ``path``, also written there atomically (a reader or a crash mid-write sees
        the old file or the whole new one, never half of it)."""
        s = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            atomic_write_text(path, s + "\n")
        return s

    @classmethod
    def from_json(cls, text_or_path: str) -> "SpikeConfig":
        """From JSON text (starting with ``{``) or a JSON file; errors name the file and say what is wrong."""
        s, where = os.fspath(text_or_path), "SpikeConfig JSON"
        if not s.lstrip().startswith("{"):
            where = f"SpikeConfig JSON file {text_or_path}"
            try:
                with open(s, encoding="utf-8") as f:
                    s = f.read()
            except (OSError, UnicodeDecodeError) as e:
                raise ConfigError(f"cannot read SpikeConfig JSON from {text_or_path!r}: {e}") from None
        try:
            d = json.loads(s)
        except (ValueError, RecursionError) as e:
            raise ConfigError(f"{where} is malformed: {str(e)[:200]}") from None
        if not isinstance(d, dict):
            raise ConfigError(f"{where} must be an object")
        try:
            return cls.from_dict(d)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}" if where != "SpikeConfig JSON" else str(e)) from None
