"""Drawing helpers for the generated mini-benchmark: fonts, colours, rotation and noise.

Fonts come from the DejaVu family (Debian ``fonts-dejavu-core``); when it is absent, PIL's built-in
default font is used so the benchmark still builds (the images then differ, so scores are comparable
only between machines with the same fonts).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

IMAGE_SIZE = 96
#: Layout grid (the bundled model's ViT patch size): glyphs and shapes sit in grid cells, and every item
#: records what each cell shows (``meta["patch_tags"]``) so a training script can supervise the vision
#: tower per patch. Evaluation never reads the tags.
GRID = 16
GRID_CELLS = (IMAGE_SIZE // GRID) ** 2
DEJAVU_DIR = Path("/usr/share/fonts/truetype/dejavu")
_FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansCondensed.ttf", "DejaVuSans-Oblique.ttf",
)
MONO_FONTS = ("DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf")


def available_fonts(names: tuple[str, ...] = _FONT_FILES) -> list[str]:
    """The DejaVu font files present on this machine (empty list: PIL's default font is used)."""
    return [n for n in names if (DEJAVU_DIR / n).is_file()]


@lru_cache(maxsize=256)
def load_font(name: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A font of ``size`` pixels; ``name=None`` or a missing file gives PIL's default font."""
    if name is not None and (DEJAVU_DIR / name).is_file():
        return ImageFont.truetype(str(DEJAVU_DIR / name), size)
    return ImageFont.load_default(size=size)


def pick_font(rng: np.random.Generator, size: int, names: tuple[str, ...] = _FONT_FILES):
    """A random available font of ``size`` pixels (PIL default when no DejaVu font is installed)."""
    fonts = available_fonts(names)
    return load_font(fonts[int(rng.integers(len(fonts)))] if fonts else None, size)


def contrasting_colours(rng: np.random.Generator) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """A (background, foreground) pair whose luminance differs enough for the text to be legible."""
    while True:
        bg = tuple(int(v) for v in rng.integers(0, 256, 3))
        fg = tuple(int(v) for v in rng.integers(0, 256, 3))
        lum = lambda c: 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]  # noqa: E731
        if abs(lum(bg) - lum(fg)) > 110:
            return bg, fg  # type: ignore[return-value]


def draw_rotated_text(img: Image.Image, text: str, font, colour: tuple[int, int, int],
                      centre: tuple[float, float], angle: float, anchor: str = "mm") -> np.ndarray:
    """Draw ``text`` at ``centre`` (placed by PIL's ``anchor``) rotated by ``angle`` degrees about that point,
    in place; returns the ink coverage (0-255, image-sized) so callers can tell which grid cells it touches."""
    layer = Image.new("L", img.size, 0)
    ImageDraw.Draw(layer).text(centre, text, font=font, fill=255, anchor=anchor)
    if angle:
        layer = layer.rotate(angle, resample=Image.BICUBIC, center=centre)
    img.paste(Image.new("RGB", img.size, colour), (0, 0), layer)
    return np.asarray(layer)


def ink_cells(coverage: np.ndarray, min_ink: float = 6 * 255) -> list[int]:
    """Raster indices of the grid cells holding at least ``min_ink`` of coverage (about 6 full pixels)."""
    n = IMAGE_SIZE // GRID
    sums = coverage[: n * GRID, : n * GRID].astype(np.float64).reshape(n, GRID, n, GRID).sum(axis=(1, 3))
    return [int(i) for i in np.flatnonzero(sums.reshape(-1) >= min_ink)]


def cell_index(x: float, y: float) -> int:
    """Raster index of the grid cell containing pixel ``(x, y)``."""
    n = IMAGE_SIZE // GRID
    return int(min(max(y, 0), IMAGE_SIZE - 1) // GRID) * n + int(min(max(x, 0), IMAGE_SIZE - 1) // GRID)


def tag_grid(cells: dict[int, list[str]]) -> tuple[tuple[str, ...], ...]:
    """``GRID_CELLS`` tuples of tags (empty: the cell shows only background) from a sparse mapping."""
    return tuple(tuple(cells.get(i, ())) for i in range(GRID_CELLS))


def add_noise(img: Image.Image, rng: np.random.Generator, sigma: float) -> Image.Image:
    """Gaussian pixel noise of standard deviation ``sigma`` (0-255 scale)."""
    arr = np.asarray(img, dtype=np.float32)
    arr = arr + rng.normal(0.0, sigma, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))

