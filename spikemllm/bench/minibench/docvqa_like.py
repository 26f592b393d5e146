"""DocVQA-like task: a small key-value form ("Total: 417"), asked for one field.

The form is laid out on the 16-pixel grid: one field per row of cells, the key in the first three cells and
the 3-digit value one digit per cell. A few-million-parameter model can then read a value as three glyphs,
and answering is what DocVQA asks for: find the field the question names and copy its value. ANLS gives
partial credit to near misses (one wrong digit of three), as it does on DocVQA.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ..example import Example
from .render import GRID, IMAGE_SIZE, add_noise, draw_rotated_text, ink_cells, pick_font, tag_grid

KEY_FONT = ("DejaVuSansMono-Bold.ttf",)
VALUE_FONTS = ("DejaVuSansMono-Bold.ttf", "DejaVuSans-Bold.ttf")
ROWS = (0, 2, 4)  # grid rows of the three fields (a blank row between fields, as forms have)
VALUE_COLS = (3, 4, 5)

KEYS: tuple[str, ...] = ("Total", "Tax", "Qty", "Room", "Code")


def make_document(fields: list[tuple[str, str]], rng: np.random.Generator
                  ) -> tuple[Image.Image, tuple[tuple[str, ...], ...]]:
    """White-ish form with ``key:`` in cells 0-2 and the value one digit per cell in cells 3-5 of each field's
    row; also returns the grid cells tagged with what they show: the (lower-case) key, or a digit and the
    key of its row (a value's meaning comes from its row, as in a real form)."""
    paper = tuple(int(v) for v in rng.integers(225, 256, 3))
    img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), paper)
    draw = ImageDraw.Draw(img)
    key_font = pick_font(rng, 12, KEY_FONT)
    value_font = pick_font(rng, int(rng.integers(14, 17)), VALUE_FONTS)
    ink = tuple(int(v) for v in rng.integers(0, 70, 3))
    cols = IMAGE_SIZE // GRID
    cells: dict[int, list[str]] = {}
    for (key, value), row in zip(fields, ROWS):
        y = row * GRID + GRID // 2 + int(rng.integers(-1, 2))
        coverage = draw_rotated_text(img, f"{key}:", key_font, ink, (2, y), 0.0, anchor="lm")
        for c in ink_cells(coverage):
            if c % cols < VALUE_COLS[0]:
                cells[c] = [key.lower()]
        for digit, col in zip(value, VALUE_COLS):
            draw.text((col * GRID + GRID // 2, y), digit, font=value_font, fill=ink, anchor="mm")
            cells[row * cols + col] = [digit, key.lower()]
    return add_noise(img, rng, float(rng.uniform(0, 8))), tag_grid(cells)


def generate(rng: np.random.Generator, n: int, split: str) -> list[Example]:
    """``n`` documents with three fields each; the question asks for one of them."""
    out = []
    for i in range(n):
        keys = [KEYS[int(k)] for k in rng.choice(len(KEYS), size=3, replace=False)]
        fields = [(k, str(int(rng.integers(100, 1000)))) for k in keys]
        key, value = fields[int(rng.integers(3))]
        image, tags = make_document(fields, rng)
        out.append(Example(
            uid=f"docvqa-{split}-{i:05d}", task="docvqa", image=image, question=f"What is the {key.lower()}?",
            answers=[value],
            meta={"fields": fields, "caption": ", ".join(f"{k} {v}" for k, v in fields), "patch_tags": tags},
        ))
    return out
