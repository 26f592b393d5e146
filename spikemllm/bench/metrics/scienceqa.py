"""ScienceQA multiple-choice accuracy, with the option letter extracted from free-form output.

Models answer "B", "B.", "(B) circle", "The answer is B." or just the option text; all count. The first
letter form found wins ("B and C" is B); text naming no valid option is wrong, as in the LLaVA ScienceQA
evaluation.
"""
from __future__ import annotations

import re

from ..example import Example
from ..prompts import option_letters
from .base import SimpleMetric

_PATTERNS = (
    re.compile(r"^\(?([A-Z])\)?(?:[.:)\s]|$)"),            # "B", "B.", "(B) text", "B: text"
    re.compile(r"answer is:?\s*\(?([A-Z])\)?(?![A-Za-z])", re.IGNORECASE),
    re.compile(r"answer:\s*\(?([A-Z])\)?(?![A-Za-z])", re.IGNORECASE),
    re.compile(r"option\s*\(?([A-Z])\)?(?![A-Za-z])", re.IGNORECASE),
)


def extract_letter(text: str, choices: list[str]) -> str | None:
    """The option letter ``text`` picks, or None when it picks none or is ambiguous."""
    letters = option_letters(len(choices))
    t = text.strip()
    # The option's text itself ("circle"), matched as a whole after trimming punctuation; checked first so
    # an option whose text is a single capital letter is not mistaken for a letter answer.
    bare = t.strip(" .").lower()
    named = [letters[i] for i, c in enumerate(choices) if c.strip().lower() == bare]
    if len(named) == 1:
        return named[0]
    for pattern in _PATTERNS:
        m = pattern.search(t)
        if m and m.group(1).upper() in letters:
            return m.group(1).upper()
    # A single stand-alone capital letter somewhere ("I think B").
    lone = {m for m in re.findall(r"(?<![A-Za-z])([A-Z])(?![A-Za-z])", t) if m in letters}
    return lone.pop() if len(lone) == 1 else None


def _score(prediction: str, example: Example) -> float:
    choices = example.choices or []
    return float(extract_letter(prediction, choices) == example.answers[0].strip().upper())


METRIC = SimpleMetric("scienceqa", _score)
