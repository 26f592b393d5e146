"""DocVQA ANLS: Average Normalized Levenshtein Similarity with threshold tau = 0.5.

Per question: the best over the gold answers of ``1 - NL`` where NL is the edit distance divided by the
longer string's length (after lower-casing and collapsing whitespace), or 0 when ``NL >= tau``. The
threshold stops a wrong answer of similar length from earning partial credit.
"""
from __future__ import annotations

from ..example import Example
from .base import SimpleMetric

TAU = 0.5


def levenshtein(a: str, b: str) -> int:
    """Edit distance with unit insert, delete and substitute costs."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def anls(prediction: str, answers: list[str], tau: float = TAU) -> float:
    """ANLS of one prediction against all accepted answers (maximum over answers)."""
    pred = _norm(prediction)
    best = 0.0
    for gold in answers:
        g = _norm(gold)
        longest = max(len(g), len(pred))
        nl = levenshtein(g, pred) / longest if longest else 0.0
        best = max(best, 1.0 - nl if nl < tau else 0.0)
    return best


def _score(prediction: str, example: Example) -> float:
    return anls(prediction, example.answers)


METRIC = SimpleMetric("docvqa", _score)
