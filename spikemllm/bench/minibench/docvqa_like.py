"""DocVQA-like task: a small key-value document ("Total: 417"), asked for one field.

Values are short numbers or names so a few-million-parameter model can read them; ANLS gives partial
credit to near misses (one wrong digit of three), as it does on DocVQA.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ..example import Example
from .render import IMAGE_SIZE, add_noise, pick_font, text_width

FONT = ("DejaVuSansMono-Bold.ttf",)
ROW_TOP = (10, 40, 70)  # a form: fields on fixed rows, values right-aligned at one column

KEYS: tuple[str, ...] = ("Total", "Tax", "Qty", "Room", "Name")
NAMES: tuple[str, ...] = ("Ann", "Bob", "Eva", "Tom", "Lee", "Max", "Zoe", "Ian")


def _value(key: str, rng: np.random.Generator) -> str:
    if key == "Name":
        return NAMES[int(rng.integers(len(NAMES)))]
    return str(int(rng.integers(100, 1000)))


def make_document(fields: list[tuple[str, str]], rng: np.random.Generator) -> Image.Image:
    """White-ish form: ``key:`` on the left and the value right-aligned on each fixed row, with noise."""
    paper = tuple(int(v) for v in rng.integers(225, 256, 3))
    img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), paper)
    draw = ImageDraw.Draw(img)
    font = pick_font(rng, 14, FONT)
    ink = tuple(int(v) for v in rng.integers(0, 70, 3))
    for (key, value), y in zip(fields, ROW_TOP):
        draw.text((3, y), f"{key}:", font=font, fill=ink)
        draw.text((IMAGE_SIZE - 3 - text_width(value, font), y), value, font=font, fill=ink)
    return add_noise(img, rng, float(rng.uniform(0, 8)))


def generate(rng: np.random.Generator, n: int, split: str) -> list[Example]:
    """``n`` documents with three fields each; the question asks for one of them."""
    out = []
    for i in range(n):
        keys = [KEYS[int(k)] for k in rng.choice(len(KEYS), size=3, replace=False)]
        fields = [(k, _value(k, rng)) for k in keys]
        key, value = fields[int(rng.integers(3))]
        out.append(Example(
            uid=f"docvqa-{split}-{i:05d}", task="docvqa", image=make_document(fields, rng),
            question=f"What is the {key.lower()}?", answers=[value], meta={"fields": fields, "caption": ", ".join(f"{k} {v}" for k, v in fields)},
        ))
    return out
