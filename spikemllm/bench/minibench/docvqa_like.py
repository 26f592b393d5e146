"""DocVQA-like task: a small key-value document ("Total: 417"), asked for one field.

Values are short numbers or names so a few-million-parameter model can read them; ANLS gives partial
credit to near misses (one wrong digit of three), as it does on DocVQA.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ..example import Example
from .render import IMAGE_SIZE, MONO_FONTS, add_noise, pick_font

KEYS: tuple[str, ...] = ("Total", "Tax", "Qty", "Room", "Name")
NAMES: tuple[str, ...] = ("Ann", "Bob", "Eva", "Tom", "Lee", "Max", "Zoe", "Ian")


def _value(key: str, rng: np.random.Generator) -> str:
    if key == "Name":
        return NAMES[int(rng.integers(len(NAMES)))]
    return str(int(rng.integers(10, 1000)))


def make_document(fields: list[tuple[str, str]], rng: np.random.Generator) -> Image.Image:
    """White-ish page with one ``key: value`` per line in a monospace font, slight jitter and noise."""
    paper = tuple(int(v) for v in rng.integers(225, 256, 3))
    img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), paper)
    draw = ImageDraw.Draw(img)
    font = pick_font(rng, int(rng.integers(13, 15)), MONO_FONTS)
    ink = tuple(int(v) for v in rng.integers(0, 70, 3))
    top = int(rng.integers(4, 12))
    for row, (key, value) in enumerate(fields):
        y = top + row * 29 + int(rng.integers(-2, 3))
        draw.text((int(rng.integers(2, 6)), y), f"{key}: {value}", font=font, fill=ink)
    return add_noise(img, rng, float(rng.uniform(0, 12)))


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
