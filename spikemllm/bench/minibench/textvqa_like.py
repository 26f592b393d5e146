"""TextVQA-like task: one word in a real font on a coloured background, rotated a little, with noise.

Ten "annotator" answers per item, as in TextVQA: most give the word, a few disagree, so the VQA accuracy
rule (``min(#matches/3, 1)`` over leave-one-out subsets) is exercised, not bypassed.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..example import Example
from .render import IMAGE_SIZE, add_noise, cell_index, contrasting_colours, draw_rotated_text, pick_font, tag_grid

WORDS: tuple[str, ...] = (
    "stop", "open", "exit", "cafe", "bank", "taxi", "hotel", "bus", "park", "sale", "pizza", "push",
    "shop", "gym", "zoo", "milk",
)
# Bold faces of three families: real font variation, but legible at 96 pixels for a model trained in minutes.
FONTS: tuple[str, ...] = ("DejaVuSans-Bold.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSansMono-Bold.ttf")
QUESTIONS: tuple[str, ...] = (
    "What word is written in the image?", "What does the sign say?", "What is written on the sign?",
)


def _case(word: str, rng: np.random.Generator) -> str:
    """Render the word in lower or upper case, as signs do."""
    return (word, word.upper())[int(rng.integers(2))]


def letter_cells(text: str, font, centre: tuple[float, float], angle: float) -> dict[int, list[str]]:
    """Grid cell of each letter's centre (text drawn centred at ``centre``, then rotated by ``angle``
    degrees counter-clockwise), tagged ``char:<lower-case letter>``; a cell may hold two letters."""
    left = centre[0] - font.getlength(text) / 2
    a = math.radians(angle)
    cells: dict[int, list[str]] = {}
    for i, ch in enumerate(text):
        dx = left + font.getlength(text[:i]) + font.getlength(ch) / 2 - centre[0]
        x = centre[0] + dx * math.cos(a)
        y = centre[1] - dx * math.sin(a)
        cells.setdefault(cell_index(x, y), []).append(f"char:{ch.lower()}")
    return cells


def make_image(word: str, rng: np.random.Generator) -> tuple[Image.Image, tuple[tuple[str, ...], ...]]:
    """Draw ``word`` with a random font, size, colour, rotation and noise level; also returns the grid
    cells holding each letter's centre, tagged with the letter (a 16-pixel patch shows one or two letters,
    so letters, not the word, are what a patch can be said to show)."""
    bg, fg = contrasting_colours(rng)
    img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), bg)
    text = _case(word, rng)
    size = int(rng.integers(19, 22)) if len(text) > 4 else int(rng.integers(22, 25))
    centre = (IMAGE_SIZE / 2 + rng.uniform(-4, 4), IMAGE_SIZE / 2 + rng.uniform(-6, 6))
    font, angle = pick_font(rng, size, FONTS), float(rng.uniform(-5, 5))
    draw_rotated_text(img, text, font, fg, centre, angle)
    tags = tag_grid(letter_cells(text, font, centre, angle))
    return add_noise(img, rng, float(rng.uniform(0, 10))), tags


def annotator_answers(word: str, rng: np.random.Generator) -> list[str]:
    """Ten answers: the word from most annotators, 0-2 of them giving another word or a longer phrase."""
    answers = [word] * 10
    for i in rng.choice(10, size=int(rng.integers(0, 3)), replace=False):
        answers[int(i)] = (WORDS[int(rng.integers(len(WORDS)))], f"the {word}", word.upper())[int(rng.integers(3))]
    return answers


def generate(rng: np.random.Generator, n: int, split: str) -> list[Example]:
    """``n`` items drawn from ``rng``."""
    out = []
    for i in range(n):
        word = WORDS[int(rng.integers(len(WORDS)))]
        image, tags = make_image(word, rng)
        out.append(Example(
            uid=f"textvqa-{split}-{i:05d}", task="textvqa", image=image,
            question=QUESTIONS[int(rng.integers(len(QUESTIONS)))], answers=annotator_answers(word, rng),
            meta={"word": word, "caption": word, "patch_tags": tags},
        ))
    return out
