"""What every benchmark metric provides, so the harness can score any task the same way.

A metric scores one prediction (``score``, a number in [0, 1] kept per example in the JSON output) and
then aggregates the per-example records into the benchmark's own reported figure (``aggregate``), e.g.
OCRBench's 1000-point scale or MME's summed acc + acc+. ``normalized`` is that figure as a percentage of
its maximum, so different benchmarks can be averaged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from ..example import Example


@dataclass(frozen=True)
class Record:
    """One scored prediction (what the harness stores per example)."""

    uid: str
    task: str
    prediction: str
    score: float
    category: str | None = None
    group: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"uid": self.uid, "task": self.task, "prediction": self.prediction, "score": self.score,
                "category": self.category, "group": self.group}


class Metric(Protocol):
    name: str

    def score(self, prediction: str, example: Example) -> float: ...

    def aggregate(self, records: list[Record]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class SimpleMetric:
    """A metric whose reported figure is ``scale`` times the mean per-example score."""

    name: str
    score_fn: Callable[[str, Example], float]
    scale: float = 100.0
    unit: str = "%"

    def score(self, prediction: str, example: Example) -> float:
        return float(self.score_fn(prediction, example))

    def aggregate(self, records: list[Record]) -> dict[str, Any]:
        if not records:
            return {"score": 0.0, "normalized": 0.0, "n": 0, "unit": self.unit}
        mean = sum(r.score for r in records) / len(records)
        by_cat: dict[str, list[float]] = {}
        for r in records:
            if r.category is not None:
                by_cat.setdefault(r.category, []).append(r.score)
        out: dict[str, Any] = {"score": mean * self.scale, "normalized": mean * 100.0, "n": len(records),
                               "unit": self.unit}
        if by_cat:
            out["per_category"] = {k: 100.0 * sum(v) / len(v) for k, v in sorted(by_cat.items())}
        return out
