"""Prompt text per benchmark: the instructions the usual VLM evaluation suites append to each question.

Kept in one place so that training the bundled model and evaluating any model use the same words.
"""
from __future__ import annotations

import string

from .example import Example

SHORT_ANSWER = "Answer the question using a single word or phrase."
LETTER_ANSWER = "Answer with the option's letter from the given choices directly."
YES_NO = "Please answer yes or no."


def option_letters(n: int) -> list[str]:
    """Letters A, B, C, ... for ``n`` options (ScienceQA has at most 5)."""
    if n > len(string.ascii_uppercase):
        raise ValueError(f"{n} options is more than there are letters")
    return list(string.ascii_uppercase[:n])


def prompt_text(ex: Example) -> str:
    """The user turn for ``ex`` (without the image placeholder, which the chat template adds)."""
    if ex.task in ("textvqa", "docvqa"):
        return f"{ex.question}\n{SHORT_ANSWER}"
    if ex.task == "scienceqa":
        choices = ex.choices or []
        lines = [f"{letter}. {c}" for letter, c in zip(option_letters(len(choices)), choices)]
        return "\n".join([ex.question, *lines, LETTER_ANSWER])
    if ex.task == "mme":
        # MME's own questions already end with the instruction; add it only when missing.
        q = ex.question.strip()
        return q if q.endswith(YES_NO) else f"{q} {YES_NO}"
    return ex.question  # ocrbench: the question is the whole instruction
