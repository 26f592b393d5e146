"""Run one setting (float or spiking) on a benchmark and summarise its cost from the run statistics.

A setting is either converted afresh from the float model (the RTN rows: converting is instant) or run on a
model that is already converted and calibrated (the recipe rows), with the row's timesteps applied through
:func:`spikemllm.msts.timesteps_override` -- the same numbers a conversion with the row's config gives.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from torch import nn

from ..config import SpikeConfig
from ..msts.budget import Budget
from ..nn.stats import RunStats, collect_stats
from .energy import energy_per_token


@dataclass
class Setting:
    """A row of the demo table.

    ``config`` is the row's whole SpikeConfig (None: float); ``method`` and ``allocation`` are what the table
    shows ("RTN" / "rotation+GPTQ"; "uniform" / "hand" / "MED" / "search"); ``recipe`` rows run on the
    calibrated recipe model instead of a fresh conversion.
    """

    name: str
    config: SpikeConfig | None = None
    mode: str = "fused"
    spiking: bool = True
    note: str = ""
    method: str = "-"
    allocation: str = "-"
    recipe: bool = False


@dataclass
class SettingResult:
    setting: Setting
    result: dict[str, Any]
    stats: RunStats | None = None
    cost: dict[str, float] = field(default_factory=dict)
    budget: Budget | None = None
    energy: dict[str, float] = field(default_factory=dict)
    regions: dict[str, str] = field(default_factory=dict)  # layer -> vision / projector / lm

    def to_dict(self) -> dict[str, Any]:
        layers = self.stats.summary_rows() if self.stats else []
        for row in layers:
            row["region"] = self.regions.get(row["layer"], "")
        return {"name": self.setting.name, "config": self.setting.config.to_dict() if self.setting.config else None,
                "mode": self.setting.mode, "spiking": self.setting.spiking, "note": self.setting.note,
                "method": self.setting.method, "allocation": self.setting.allocation, "recipe": self.setting.recipe,
                "budget": self.budget.to_dict() if self.budget else None, "energy": self.energy,
                "tasks": self.result["tasks"], "average": self.result["average"], "cost": self.cost,
                "layers": layers, "records": self.result.get("records", [])}


def cost_summary(stats: RunStats) -> dict[str, float]:
    """Firing rate, ACs and MACs of a run, and the timesteps per MAC over the run's *own* tokens.

    ``run_T_per_mac`` averages over what the run processed (prompts and generated answers, padding included),
    so it is not the budget: generated tokens are text, so it leans towards Tt. The budget -- the unit ``med``
    allocates in and every table shows -- is :func:`spikemllm.msts.budget.model_budget`, priced on the
    calibration set.
    """
    num = den = 0.0
    for ls in stats.layers.values():
        w = ls.in_features * ls.out_features
        for c in ls.per_modality.values():
            num += w * c.steps_per_token
            den += w * c.tokens
    tot = stats.totals()
    return {"run_T_per_mac": num / den if den else 0.0, "firing_rate": tot.firing_rate, "acs": float(tot.acs),
            "macs": float(tot.macs), "ac_per_mac": tot.acs / tot.macs if tot.macs else 0.0}


@contextlib.contextmanager
def _counting_calls(model: nn.Module) -> Iterator[dict[str, int]]:
    """Forward calls per SpikeLinear (each call reads the layer's weights once: the energy's memory side)."""
    from ..nn.spike_linear import SpikeLinear

    calls: dict[str, int] = {}
    handles = []
    for name, mod in model.named_modules():
        if isinstance(mod, SpikeLinear):
            def hook(_m: nn.Module, _a: tuple, name: str = name) -> None:
                calls[name] = calls.get(name, 0) + 1
            handles.append(mod.register_forward_pre_hook(hook))
    try:
        yield calls
    finally:
        for h in handles:
            h.remove()


def _with_timesteps(model: nn.Module, config: SpikeConfig) -> contextlib.AbstractContextManager:
    """Run a converted ``model`` at ``config``'s timesteps (every group), restoring it afterwards."""
    from ..models.base import describe
    from ..msts.budget import config_timesteps
    from ..msts.sensitivity import spike_groups, timesteps_override

    mm = describe(model)
    t_of = config_timesteps(config)
    changes = {g: {m: t_of(g, m) for m in ("vision", "text")} for g in spike_groups(model, mm)}
    return timesteps_override(model, mm, changes)


def run_setting(setting: Setting, load: Callable[[], tuple[nn.Module, Any]],
                evaluate: Callable[[nn.Module, Any], dict[str, Any]], progress: bool = True, *,
                converted: tuple[nn.Module, Any] | None = None) -> SettingResult:
    """Evaluate one row and collect its statistics, energy per token and layer regions.

    Float rows load a fresh model; spiking rows convert a fresh one with ``setting.config``, or, with
    ``converted=(model, processor)`` (a calibrated recipe), run that model at the row's timesteps.
    """
    from ..models.base import describe
    from ..nn.spike_linear import set_mode
    from ..spikify import convert

    if setting.config is None:
        model, proc = load()
        return SettingResult(setting, evaluate(model, proc))
    if converted is not None:
        model, proc = converted
        retime = _with_timesteps(model, setting.config)
    else:
        model, proc = load()
        convert(model, setting.config, progress=False)
        retime = contextlib.nullcontext()
    mm = describe(model)
    with retime:
        set_mode(model, setting.mode)
        with collect_stats(model) as stats, _counting_calls(model) as calls:
            result = evaluate(model, proc)
        set_mode(model, "fused")
    regions = {name: mm.region_of(name) or "" for name in stats.layers}
    res = SettingResult(setting, result, stats, cost_summary(stats) if setting.spiking else {}, regions=regions)
    if setting.spiking:
        res.energy = energy_per_token(stats, calls, regions)
    return res
