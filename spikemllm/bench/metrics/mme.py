"""MME: per subtask, acc (questions right, %) plus acc+ (images with both questions right, %), so each
subtask is out of 200; the perception and cognition totals sum their official subtasks.

Answers are parsed as in MME's evaluation: lower-cased, periods removed; "yes"/"no" exactly, else the
first four characters are searched for "yes" then "no"; anything else is wrong.
"""
from __future__ import annotations

from typing import Any

from ..example import Example
from .base import Record

PERCEPTION: tuple[str, ...] = ("existence", "count", "position", "color", "posters", "celebrity", "scene",
                               "landmark", "artwork", "OCR")
COGNITION: tuple[str, ...] = ("commonsense_reasoning", "numerical_calculation", "text_translation",
                              "code_reasoning")


def parse_yes_no(prediction: str) -> str:
    """"yes", "no" or "other"."""
    text = prediction.lower().strip().replace(".", "")
    if text in ("yes", "no"):
        return text
    prefix = text[:4]
    if "yes" in prefix:
        return "yes"
    if "no" in prefix:
        return "no"
    return "other"


def subtask_scores(records: list[Record]) -> dict[str, dict[str, float]]:
    """acc, acc+ and their sum for each subtask (records grouped by ``category`` and image ``group``)."""
    out: dict[str, dict[str, float]] = {}
    for sub in sorted({r.category or "unknown" for r in records}):
        recs = [r for r in records if (r.category or "unknown") == sub]
        images: dict[str, list[float]] = {}
        for r in recs:
            images.setdefault(r.group or r.uid, []).append(r.score)
        acc = 100.0 * sum(r.score for r in recs) / len(recs)
        acc_plus = 100.0 * sum(all(s == 1.0 for s in v) for v in images.values()) / len(images)
        out[sub] = {"acc": acc, "acc_plus": acc_plus, "score": acc + acc_plus}
    return out


class MMEMetric:
    name = "mme"

    def score(self, prediction: str, example: Example) -> float:
        return float(parse_yes_no(prediction) == example.answers[0].strip().lower())

    def aggregate(self, records: list[Record]) -> dict[str, Any]:
        subs = subtask_scores(records)
        perception = sum(v["score"] for k, v in subs.items() if k in PERCEPTION)
        cognition = sum(v["score"] for k, v in subs.items() if k in COGNITION)
        total = sum(v["score"] for v in subs.values())
        # Normalised: the share of the maximum (200 per subtask present).
        normalized = 100.0 * total / (200.0 * len(subs)) if subs else 0.0
        return {"score": total, "normalized": normalized, "n": len(records), "unit": "sum of subtasks",
                "perception": perception, "cognition": cognition, "per_category": subs}


METRIC = MMEMetric()
