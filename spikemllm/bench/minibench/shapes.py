"""Scenes of simple shapes shared by the ScienceQA-like and MME-like tasks.

Each scene holds 1-3 shapes of distinct kinds, so "the circle" always names one shape; shapes sit in
separate columns so "left of" has one answer. Shape centres are centres of 16-pixel grid cells, and the
centre cell is tagged with the shape's size, colour, kind and column (``meta["patch_tags"]``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .render import GRID, IMAGE_SIZE, add_noise, cell_index, tag_grid

KINDS: tuple[str, ...] = ("circle", "square", "triangle")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 60, 220), "yellow": (235, 200, 20),
}
SIZES: dict[str, int] = {"small": 5, "large": 9}  # half-width in pixels
COLUMNS = (1, 3, 5)  # grid columns a shape may sit in


@dataclass(frozen=True)
class Shape:
    kind: str
    colour: str
    size: str
    x: int  # centre
    y: int


def random_scene(rng: np.random.Generator, n: int, distinct_sizes: bool = False) -> list[Shape]:
    """``n`` shapes ordered left to right; ``distinct_sizes`` makes exactly one shape large."""
    kinds = [KINDS[int(k)] for k in rng.choice(len(KINDS), size=n, replace=False)]
    cols = sorted(COLUMNS[int(c)] for c in rng.choice(len(COLUMNS), size=n, replace=False))
    large = int(rng.integers(n)) if distinct_sizes else -1
    shapes = []
    for i, (kind, col) in enumerate(zip(kinds, cols)):
        size = ("large" if i == large else "small") if distinct_sizes else ("small", "large")[int(rng.integers(2))]
        x = GRID * col + GRID // 2
        y = GRID * int(rng.integers(0, IMAGE_SIZE // GRID)) + GRID // 2
        colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
        shapes.append(Shape(kind, colour, size, x, y))
    return shapes


def describe(shapes: list[Shape]) -> str:
    """A left-to-right caption ("large red circle, small blue square"); kept in ``meta`` so a training
    script can use dense captions besides the questions."""
    return ", ".join(f"{s.size} {s.colour} {s.kind}" for s in shapes)


def scene_tags(shapes: list[Shape]) -> tuple[tuple[str, ...], ...]:
    """Per grid cell: ``(size, colour, kind, "col<c>")`` for the cell holding a shape's centre, else ()."""
    return tag_grid({cell_index(s.x, s.y): [s.size, s.colour, s.kind, f"col{s.x // GRID}"] for s in shapes})


def draw_scene(shapes: list[Shape], rng: np.random.Generator) -> Image.Image:
    """Render the scene on a light random background with mild noise."""
    bg = tuple(int(v) for v in rng.integers(200, 256, 3))
    img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), bg)
    draw = ImageDraw.Draw(img)
    for s in shapes:
        r, fill = SIZES[s.size], COLOURS[s.colour]
        box = (s.x - r, s.y - r, s.x + r, s.y + r)
        if s.kind == "circle":
            draw.ellipse(box, fill=fill)
        elif s.kind == "square":
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon([(s.x, s.y - r), (s.x - r, s.y + r), (s.x + r, s.y + r)], fill=fill)
    return add_noise(img, rng, float(rng.uniform(0, 6)))
