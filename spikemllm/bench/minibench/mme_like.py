"""MME-like task: two yes/no questions per image (one "Yes", one "No"), scored with acc and acc+.

Subtask names are MME's own perception subtasks (existence, count, position, color), so the official
perception total adds them up.
"""
from __future__ import annotations

import numpy as np

from ..example import Example
from .shapes import COLOURS, KINDS, describe, draw_scene, random_scene, scene_tags

SUBTASKS: tuple[str, ...] = ("existence", "count", "position", "color")
SUFFIX = " Please answer yes or no."


def _pair(subtask: str, rng: np.random.Generator):
    """(scene, yes-question, no-question) for ``subtask``."""
    if subtask == "existence":
        scene = random_scene(rng, int(rng.integers(1, 3)))
        present = {s.kind for s in scene}
        absent = [k for k in KINDS if k not in present]
        yes_kind = scene[int(rng.integers(len(scene)))].kind
        no_kind = absent[int(rng.integers(len(absent)))]
        return scene, f"Is there a {yes_kind} in the image?", f"Is there a {no_kind} in the image?"
    if subtask == "count":
        scene = random_scene(rng, int(rng.integers(1, 4)))
        wrong = [c for c in (1, 2, 3) if c != len(scene)][int(rng.integers(2))]
        word = lambda c: "shape" if c == 1 else "shapes"  # noqa: E731
        return (scene, f"Are there {len(scene)} {word(len(scene))} in the image?".replace("Are there 1", "Is there 1"),
                f"Are there {wrong} {word(wrong)} in the image?".replace("Are there 1", "Is there 1"))
    if subtask == "position":
        scene = random_scene(rng, 2)
        a, b = scene[0].kind, scene[1].kind
        return scene, f"Is the {a} on the left of the {b}?", f"Is the {b} on the left of the {a}?"
    scene = random_scene(rng, int(rng.integers(1, 4)))
    target = scene[int(rng.integers(len(scene)))]
    other = [c for c in COLOURS if c != target.colour][int(rng.integers(len(COLOURS) - 1))]
    return scene, f"Is the {target.kind} {target.colour}?", f"Is the {target.kind} {other}?"


def generate(rng: np.random.Generator, n: int, split: str) -> list[Example]:
    """``n`` questions (``n // 2`` images, rounded up), the yes/no order inside a pair random."""
    out: list[Example] = []
    for p in range((n + 1) // 2):
        subtask = SUBTASKS[p % len(SUBTASKS)]
        scene, yes_q, no_q = _pair(subtask, rng)
        image = draw_scene(scene, rng)
        pair = [(yes_q, "Yes"), (no_q, "No")]
        if rng.integers(2):
            pair.reverse()
        for j, (q, a) in enumerate(pair):
            out.append(Example(
                uid=f"mme-{split}-{p:05d}-{j}", task="mme", image=image, question=q + SUFFIX, answers=[a],
                category=subtask, group=f"mme-{split}-{p:05d}",
                meta={"caption": describe(scene), "patch_tags": scene_tags(scene)},
            ))
    return out
