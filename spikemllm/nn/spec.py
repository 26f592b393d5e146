"""Frozen per-layer specs: everything a spiking layer computes with, decided once at conversion.

    SpikeConfig + ModelMap + layer name --spikify.specs.layer_spec()--> SpikeLinearSpec --> SpikeLinear(in, out, spec)

A layer never re-derives its settings from keyword arguments; every rebuild (MSTS timestep overrides and
search, load, ``set_mode``) is ``dataclasses.replace(layer.spec, ...)``, so no setting can be dropped on the way.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from ..coding import DEFAULT_CODER, get_coder
from ..errors import ConfigError
from ..quant import QuantSpec

MODES = ("faithful", "fused", "fakequant")
#: Where a spiking layer's tokens come from: only vision tokens (vision tower, projector) or the LM's mix.
TOKEN_REGIONS = ("vision", "lm")


def _default_weight_spec() -> QuantSpec:
    return QuantSpec(bits=4, symmetric=True, granularity="per-channel")


@dataclass(frozen=True)
class SpikeLinearSpec:
    """What one :class:`~spikemllm.nn.SpikeLinear` computes (apart from its integer weights and transform).

    Attributes:
        coder: registered coder name (:mod:`spikemllm.coding`).
        t_text / t_vision: timesteps of text and vision tokens (``t_vision`` None: same as text).
        region: ``"vision"`` (every token is a vision token) or ``"lm"`` (the current vision mask decides).
        signed: signed (ternary) or unsigned (binary, zero point) spikes.
        weight_spec: integer weights (symmetric, at most 8 bits: stored as int8).
        act_clip: clipping ratio of the per-token activation scales.
        act_group_size: None (one activation scale per token) or a group size (one per token and group).
        mode: ``"fused"``, ``"faithful"`` or ``"fakequant"``.
    """

    coder: str = DEFAULT_CODER
    t_text: int = 3
    t_vision: int | None = None
    region: str = "lm"
    signed: bool = True
    weight_spec: QuantSpec = field(default_factory=_default_weight_spec)
    act_clip: float = 1.0
    act_group_size: int | None = None
    mode: str = "fused"

    def __post_init__(self) -> None:
        if self.region not in TOKEN_REGIONS:
            raise ConfigError(f"region={self.region!r} is unknown; allowed values: {', '.join(TOKEN_REGIONS)}")
        t_vision = self.t_text if self.t_vision is None else self.t_vision
        for name, v in (("t_text", self.t_text), ("t_vision", t_vision)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ConfigError(f"{name}={v!r} is out of range; allowed values: integers >= 1")
        object.__setattr__(self, "t_text", int(self.t_text))
        object.__setattr__(self, "t_vision", int(t_vision))
        coder = get_coder(self.coder)
        for t in {self.t_text, self.t_vision}:
            coder.level_spec(timesteps=t, signed=self.signed)  # validates both timesteps and the sign
        if self.weight_spec is None:
            object.__setattr__(self, "weight_spec", _default_weight_spec())
        if not self.weight_spec.symmetric:
            raise ConfigError("weight_spec.symmetric=False is not supported; allowed values: True (integer weights)")
        if self.weight_spec.bits > 8:  # qweight is int8: wider codes would wrap around silently
            raise ConfigError(f"weight_spec.bits={self.weight_spec.bits} is out of range; allowed values: 2..8 "
                              "(weights are stored as int8)")
        if self.act_group_size is not None and (isinstance(self.act_group_size, bool) or
                                                not isinstance(self.act_group_size, int) or self.act_group_size < 1):
            raise ConfigError(f"act_group_size={self.act_group_size!r} is invalid; allowed values: None or "
                              "integers >= 1")
        if self.mode not in MODES:
            raise ConfigError(f"mode={self.mode!r} is unknown; allowed values: {', '.join(MODES)}")

    # --- derived ---------------------------------------------------------------------------------------
    @property
    def timesteps(self) -> dict[str, int]:
        return {"vision": self.t_vision, "text": self.t_text}

    @property
    def t_max(self) -> int:
        return max(self.t_text, self.t_vision)

    def act_spec(self, bits: int) -> QuantSpec:
        """The per-token activation quantizer for codes of ``bits`` bits (the coder's at ``t_max``)."""
        return QuantSpec(bits=max(2, bits), symmetric=self.signed, granularity="per-token", clip_ratio=self.act_clip)

    def weight_groups(self, in_features: int) -> int:
        """Weight scale groups per row; checks that the weight and activation groups fit ``in_features``."""
        ws = self.weight_spec
        groups = in_features // ws.group_size if ws.granularity == "per-group" else 1
        if ws.granularity == "per-group" and in_features % ws.group_size:
            raise ConfigError(f"group_size={ws.group_size} does not divide in_features={in_features}; "
                              f"allowed values: a divisor of {in_features}")
        g = self.act_group_size
        if g is not None:
            if in_features % g:
                raise ConfigError(f"act_group_size={g!r} does not divide in_features={in_features}; "
                                  f"allowed values: None or a divisor of {in_features}")
            if groups > 1 and g != ws.group_size:
                raise ConfigError(f"act_group_size={g} differs from the weight group_size={ws.group_size}; "
                                  f"allowed values: None or {ws.group_size}")
        return groups

    def with_timesteps(self, t: Mapping[str, int]) -> "SpikeLinearSpec":
        """This spec at other timesteps (partial dicts keep the missing modality)."""
        return replace(self, t_text=int(t.get("text", self.t_text)), t_vision=int(t.get("vision", self.t_vision)))


@dataclass(frozen=True)
class SpikeAttentionSpec:
    """What one spiking attention module computes; kept on the module as ``module._spike_attn`` (the attention
    function receives only the module)."""

    coder: str
    t_text: int
    t_vision: int
    region: str  # "vision" (every token at t_vision) or "lm"
    mode: str = "fused"
    backend: str = "auto"  # "auto" (int8 kernels where exact), "int" or "float": see spikemllm.nn.set_backend

    def with_timesteps(self, t: Mapping[str, int]) -> "SpikeAttentionSpec":
        return replace(self, t_text=int(t.get("text", self.t_text)), t_vision=int(t.get("vision", self.t_vision)))


def spec_kwargs(kwargs: Mapping[str, Any]) -> SpikeLinearSpec:
    """A spec from the keyword arguments SpikeLinear took before specs (the compatibility path)."""
    return SpikeLinearSpec(**dict(kwargs))
