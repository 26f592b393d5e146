"""Run one setting (float or spiking) on a benchmark and summarise its cost from the run statistics."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from ..config import SpikeConfig
from ..nn.stats import RunStats, collect_stats


@dataclass
class Setting:
    """A row of the demo table: a name, a SpikeConfig (None: float) and the mode to run it in."""

    name: str
    config: SpikeConfig | None = None
    mode: str = "fused"
    spiking: bool = True
    note: str = ""


@dataclass
class SettingResult:
    setting: Setting
    result: dict[str, Any]
    stats: RunStats | None = None
    cost: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.setting.name, "config": self.setting.config.to_dict() if self.setting.config else None,
                "mode": self.setting.mode, "spiking": self.setting.spiking, "note": self.setting.note,
                "tasks": self.result["tasks"], "average": self.result["average"], "cost": self.cost,
                "layers": self.stats.summary_rows() if self.stats else [], "records": self.result.get("records", [])}


def cost_summary(stats: RunStats) -> dict[str, float]:
    """Average timesteps (weighted by each layer's MACs per token), firing rate, ACs and MACs of a run."""
    num = den = 0.0
    per_mod: dict[str, list[float]] = {"vision": [0.0, 0.0], "text": [0.0, 0.0]}
    for ls in stats.layers.values():
        w = ls.in_features * ls.out_features
        for m, c in ls.per_modality.items():
            num += w * c.steps_per_token
            den += w * c.tokens
            per_mod[m][0] += w * c.steps_per_token
            per_mod[m][1] += w * c.tokens
    tot = stats.totals()
    return {"avg_T": num / den if den else 0.0,
            "avg_T_vision": per_mod["vision"][0] / per_mod["vision"][1] if per_mod["vision"][1] else 0.0,
            "avg_T_text": per_mod["text"][0] / per_mod["text"][1] if per_mod["text"][1] else 0.0,
            "firing_rate": tot.firing_rate, "acs": float(tot.acs), "macs": float(tot.macs),
            "ac_per_mac": tot.acs / tot.macs if tot.macs else 0.0}


def run_setting(setting: Setting, load: Callable[[], tuple[nn.Module, Any]],
                evaluate: Callable[[nn.Module, Any], dict[str, Any]], progress: bool = True) -> SettingResult:
    """Load a fresh float model, convert it per ``setting``, evaluate it, and collect its statistics."""
    from ..nn.spike_linear import set_mode
    from ..spikify import convert

    model, proc = load()
    if setting.config is None:
        return SettingResult(setting, evaluate(model, proc))
    convert(model, setting.config, progress=False)
    set_mode(model, setting.mode)
    with collect_stats(model) as stats:
        result = evaluate(model, proc)
    return SettingResult(setting, result, stats, cost_summary(stats) if setting.spiking else {})
