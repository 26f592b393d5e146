"""ScienceQA-like task: multiple-choice questions about a scene of shapes (colour, count, size, position).

Options are shuffled, so the model must match its answer to an option and give that option's letter,
as ScienceQA requires.
"""
from __future__ import annotations

import numpy as np

from ..example import Example
from ..prompts import option_letters
from .shapes import COLOURS, KINDS, describe, draw_scene, random_scene, scene_tags

QUESTION_TYPES: tuple[str, ...] = ("colour", "count", "size", "position")


def _options(correct: str, pool: list[str], rng: np.random.Generator, k: int = 3) -> list[str]:
    others = [p for p in pool if p != correct]
    picked = [others[int(i)] for i in rng.choice(len(others), size=k - 1, replace=False)] + [correct]
    return [picked[int(i)] for i in rng.permutation(k)]


def _question(kind: str, rng: np.random.Generator):
    """(question, correct option, option pool, scene) for one question type."""
    if kind == "colour":
        scene = random_scene(rng, int(rng.integers(1, 4)))
        target = scene[int(rng.integers(len(scene)))]
        return f"What color is the {target.kind}?", target.colour, list(COLOURS), scene
    if kind == "count":
        scene = random_scene(rng, int(rng.integers(1, 4)))
        return "How many shapes are in the picture?", str(len(scene)), ["1", "2", "3", "4"], scene
    scene = random_scene(rng, int(rng.integers(2, 4)), distinct_sizes=(kind == "size"))
    if kind == "size":
        answer = next(s.kind for s in scene if s.size == "large")
        return "Which shape is the largest?", answer, list(KINDS), scene
    return "Which shape is on the far left?", scene[0].kind, list(KINDS), scene


def generate(rng: np.random.Generator, n: int, split: str) -> list[Example]:
    """``n`` questions cycling through the four question types."""
    out = []
    for i in range(n):
        qtype = QUESTION_TYPES[i % len(QUESTION_TYPES)]
        question, correct, pool, scene = _question(qtype, rng)
        choices = _options(correct, pool, rng)
        letter = option_letters(len(choices))[choices.index(correct)]
        out.append(Example(
            uid=f"scienceqa-{split}-{i:05d}", task="scienceqa", image=draw_scene(scene, rng), question=question,
            answers=[letter], choices=choices, category=qtype,
            meta={"answer_text": correct, "caption": describe(scene), "patch_tags": scene_tags(scene)},
        ))
    return out
