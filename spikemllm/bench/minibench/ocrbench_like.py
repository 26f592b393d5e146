"""OCRBench-like task: a string of real handwritten digits (scikit-learn ``load_digits``).

Train and held-out items take their digit images from disjoint halves of the 1797 scans, so held-out
scores measure reading unseen handwriting, not recalling pixels.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from ..example import Example
from .render import GRID, IMAGE_SIZE, add_noise, tag_grid

CATEGORY = "Digit String Recognition"
QUESTIONS: tuple[str, ...] = ("What number is written in the image?", "What are the digits in the image?")
CELL = GRID  # each 8x8 scan is drawn 16x16 on the 16-pixel grid: one ViT patch per digit


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.float32) / 16.0, d.target.astype(np.int64)


def digit_pool(split: str) -> np.ndarray:
    """Indices of the scans a split may use: even indices for train, odd for every other split."""
    images, _ = _digits()
    return np.arange(0 if split == "train" else 1, len(images), 2)


def make_image(indices: list[int], rng: np.random.Generator) -> tuple[Image.Image, tuple[tuple[str, ...], ...]]:
    """Dark digits on a light background, one cell each, in a row at a random height; also returns the
    grid cells tagged with their digit."""
    images, labels = _digits()
    canvas = np.full((IMAGE_SIZE, IMAGE_SIZE), float(rng.uniform(0.8, 1.0)), dtype=np.float32)
    x0 = CELL * int(rng.integers(0, IMAGE_SIZE // CELL - len(indices) + 1))
    y0 = CELL * int(rng.integers(0, IMAGE_SIZE // CELL))
    ink = float(rng.uniform(0.0, 0.3))
    cols = IMAGE_SIZE // CELL
    cells = {(y0 // CELL) * cols + x0 // CELL + j: [str(int(labels[idx]))] for j, idx in enumerate(indices)}
    for j, idx in enumerate(indices):
        scan = np.asarray(Image.fromarray((images[idx] * 255).astype(np.uint8)).resize((CELL, CELL),
                                                                                      Image.BILINEAR)) / 255.0
        x = x0 + j * CELL
        region = canvas[y0:y0 + CELL, x:x + CELL]
        canvas[y0:y0 + CELL, x:x + CELL] = region * (1 - scan) + ink * scan
    rgb = (np.repeat(canvas[..., None], 3, axis=2) * 255).astype(np.uint8)
    return add_noise(Image.fromarray(rgb), rng, float(rng.uniform(0, 12))), tag_grid(cells)


def generate(rng: np.random.Generator, n: int, split: str) -> list[Example]:
    """``n`` strings of 2-4 digits."""
    _, labels = _digits()
    pool = digit_pool(split)
    out = []
    for i in range(n):
        idx = [int(v) for v in rng.choice(pool, size=int(rng.integers(2, 5)))]
        text = "".join(str(int(labels[j])) for j in idx)
        image, tags = make_image(idx, rng)
        out.append(Example(
            uid=f"ocrbench-{split}-{i:05d}", task="ocrbench", image=image,
            question=QUESTIONS[int(rng.integers(len(QUESTIONS)))], answers=[text], category=CATEGORY,
            meta={"digit_indices": idx, "caption": text, "patch_tags": tags},
        ))
    return out
