"""OCRBench: a prediction is right when it contains a gold answer, under the per-category rules of the
official evaluation; the benchmark reports the number right out of its 1000 questions.

Rules: for "Handwritten Mathematical Expression Recognition" (HME100k) spaces and newlines are removed
from both strings and case is kept (LaTeX is case-sensitive); for every other category both strings are
lower-cased, stripped and newlines become spaces. Reported ``score`` is ``1000 * right / total``, which is
the official count when all 1000 questions are run.
"""
from __future__ import annotations

from typing import Any

from ..example import Example
from .base import Record

HME_CATEGORY = "Handwritten Mathematical Expression Recognition"
#: OCRBench's five reporting groups and the question types in each.
GROUPS: dict[str, tuple[str, ...]] = {
    "Text Recognition": ("Regular Text Recognition", "Irregular Text Recognition", "Artistic Text Recognition",
                         "Handwriting Recognition", "Digit String Recognition", "Non-Semantic Text Recognition"),
    "Scene Text-centric VQA": ("Scene Text-centric VQA",),
    "Doc-oriented VQA": ("Doc-oriented VQA",),
    "Key Information Extraction": ("Key Information Extraction",),
    "Handwritten Mathematical Expression Recognition": (HME_CATEGORY,),
}
FULL_SCALE = 1000.0


def ocrbench_match(prediction: str, answers: list[str], category: str | None) -> bool:
    """Whether ``prediction`` contains any gold answer under ``category``'s rule."""
    if category == HME_CATEGORY:
        pred = prediction.strip().replace("\n", " ").replace(" ", "")
        return any(a.strip().replace("\n", " ").replace(" ", "") in pred for a in answers)
    pred = prediction.lower().strip().replace("\n", " ")
    return any(a.lower().strip().replace("\n", " ") in pred for a in answers)


class OCRBenchMetric:
    name = "ocrbench"

    def score(self, prediction: str, example: Example) -> float:
        return float(ocrbench_match(prediction, example.answers, example.category))

    def aggregate(self, records: list[Record]) -> dict[str, Any]:
        n = len(records)
        right = sum(r.score for r in records)
        per_group: dict[str, float] = {}
        for group, cats in GROUPS.items():
            hits = [r.score for r in records if r.category in cats]
            if hits:
                per_group[group] = sum(hits)
        return {"score": FULL_SCALE * right / n if n else 0.0, "normalized": 100.0 * right / n if n else 0.0,
                "n": n, "correct": right, "unit": "/1000", "per_category": per_group}


METRIC = OCRBenchMetric()
