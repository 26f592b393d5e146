"""The budget unit, defined once: **MAC-weighted average timesteps over the tokens of the calibration set**.

    budget = sum_u MACs_u * T_u / sum_u MACs_u

where ``u`` runs over the (group, modality) units of :mod:`.units` (a block of the vision tower or of the
LM, or ``rest``: the projector and any other converted linear outside the blocks; vision or text tokens),
``MACs_u`` is what the unit's converted linears multiply-accumulate on the calibration set's tokens
(padding left out: it is not a token of the set) and ``T_u`` the timesteps the unit runs at. It is the
average number of timesteps per multiply-accumulate: what an accelerator pays for.

Why one definition: ``spikemllm med`` once reported a cost of 3.432 for a budget of 3.5, and ``spikemllm
eval`` of the same config then printed "avg T 3.52" -- it averaged over the evaluated tokens, generated
answers included (all text, so at Tt), not over the calibration set. Every command now prices a plan with
:func:`mac_weighted_timesteps` on the same reference set (:data:`REFERENCE_CALIB` unless told otherwise),
so a plan allocated under a budget is never read back above it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

from torch import nn

from ..spikify.state import converted_config
from ..config import SpikeConfig
from ..errors import ConfigError
from .units import MODALITIES, REST

#: The calibration set that defines the unit when none is named: 20 train-split mini-benchmark items (four
#: per task, never the held-out items), prompt + gold answer, seed 0.
REFERENCE_CALIB = "minibench:20"
#: Fallback for a model without an image processor (text-only): spikemllm's default calibration batches.
TEXT_CALIB = "random:8"
UNIT = "MAC-weighted average timesteps over the calibration tokens"

Macs = Mapping[str, Mapping[str, float]]  # group -> modality -> MACs


def mac_weighted_timesteps(macs: Macs, t_of: Callable[[str, str], int],
                           modalities: tuple[str, ...] = MODALITIES) -> float:
    """``sum MACs_u T_u / sum MACs_u`` over the units with MACs in ``modalities`` (the one formula)."""
    num = den = 0.0
    for g, cell in macs.items():
        for m in modalities:
            w = float(cell.get(m, 0) or 0)
            if w > 0:
                num += w * t_of(g, m)
                den += w
    return num / den if den else 0.0


def config_timesteps(config: SpikeConfig) -> Callable[[str, str], int]:
    """``t_of(group, modality)`` of a config: block overrides, else the global timesteps (``rest``)."""
    def t_of(g: str, m: str) -> int:
        if g == REST:
            return config.timesteps[m]
        kind, idx = g.split(".")
        return config.timesteps_for(kind, int(idx))[m]
    return t_of


@dataclass(frozen=True)
class Budget:
    """A plan priced in the unit: the average and its per-modality parts, and the set it was taken on."""

    value: float
    vision: float
    text: float
    calib: str

    def format(self) -> str:
        return f"{self.value:.3f} (vision {self.vision:.2f} / text {self.text:.2f}; {UNIT}, {self.calib})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "unit": UNIT}


def budget_of(macs: Macs, t_of: Callable[[str, str], int], calib: str) -> Budget:
    """The :class:`Budget` of timesteps ``t_of`` under MAC weights ``macs``."""
    return Budget(value=mac_weighted_timesteps(macs, t_of), vision=mac_weighted_timesteps(macs, t_of, ("vision",)),
                  text=mac_weighted_timesteps(macs, t_of, ("text",)), calib=calib)


@dataclass(frozen=True)
class Pricer:
    """MAC weights of a model on a calibration set, ready to price any plan of that model.

    Build it once (one counting pass) and price many configs: what the demo and the report do.
    """

    macs: Mapping[str, Mapping[str, float]]
    calib: str

    def __call__(self, config: SpikeConfig) -> Budget:
        return budget_of(self.macs, config_timesteps(config), self.calib)


def measure_macs(model: nn.Module, calib: list[dict[str, Any]], config: SpikeConfig | None = None
                 ) -> tuple[dict[str, dict[str, int]], Callable[[str, str], int]]:
    """MACs per unit on ``calib`` and the timesteps ``model`` runs (converted) or would run under ``config``.

    One forward pass with counting hooks; a float model is left unchanged.
    """
    from ..models.base import describe
    from ..spikify import select_targets
    from .observe import observe
    from .sensitivity import current_timesteps, spike_groups

    mm = describe(model)
    if converted_config(model) is not None:
        if config is not None and config != converted_config(model):
            raise ConfigError("the model is already converted; price it without a config (its own timesteps)")
        linears = {n: model.get_submodule(n) for names in spike_groups(model, mm).values() for n in names}
        now = current_timesteps(model, mm)
        t_of: Callable[[str, str], int] = lambda g, m: now[g][m]  # noqa: E731
    else:
        if config is None:
            raise ConfigError("a float model has no timesteps: pass the SpikeConfig to price")
        linears = select_targets(mm, config)
        t_of = config_timesteps(config)
    ob = observe(mm, linears, calib, cosines=False)
    return ob.macs, t_of


def model_budget(model: nn.Module, calib: list[dict[str, Any]], config: SpikeConfig | None = None,
                 calib_name: str = REFERENCE_CALIB) -> Budget:
    """The budget ``model`` (converted, or float + ``config``) spends on ``calib``'s tokens."""
    macs, t_of = measure_macs(model, calib, config)
    return budget_of(macs, t_of, calib_name)


def calibration_set(spec: str, model: nn.Module, processor: Any, *, batch_size: int = 5, seed: int = 0
                    ) -> list[dict[str, Any]]:
    """Batches for ``spec``: ``minibench[:N]`` (N train-split mini-benchmark items, prompt + gold answer; needs
    an image processor) or ``random[:N]`` (spikemllm's default calibration set)."""
    name, _, count = spec.partition(":")
    try:
        n = int(count) if count else (20 if name == "minibench" else 8)
    except ValueError:
        raise ConfigError(f"calibration {spec!r}: the count after ':' must be an integer") from None
    if name == "minibench":
        if processor is None or getattr(processor, "image_processor", None) is None:
            raise ConfigError(f"calibration {spec!r} needs a model folder with an image processor; "
                              f"use '{TEXT_CALIB}'")
        from .calib import minibench_calibration

        return minibench_calibration(processor, n=n, seed=seed, batch_size=batch_size)
    if name == "random":
        from ..calibrate import default_calibration
        from ..models import describe

        return default_calibration(describe(model), n=n, seed=seed)
    raise ConfigError(f"calibration {spec!r} is unknown; allowed: 'minibench[:N]' or 'random[:N]'")


def default_calib_spec(processor: Any) -> str:
    """:data:`REFERENCE_CALIB` for a model with an image processor, else :data:`TEXT_CALIB`."""
    return REFERENCE_CALIB if getattr(processor, "image_processor", None) is not None else TEXT_CALIB
