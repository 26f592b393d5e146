"""The generated mini-benchmark: five tasks that mirror TextVQA, DocVQA, OCRBench, ScienceQA and MME.

It needs no downloads and is deterministic: the same ``(split, n_per_task, seed)`` gives the same images
and questions (on machines with the same fonts, see :mod:`.render`). Each task draws from its own random
stream, so adding items to one task never changes another.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ...errors import ConfigError
from ..example import BENCHMARKS, Example
from . import docvqa_like, mme_like, ocrbench_like, scienceqa_like, textvqa_like

SPLITS: dict[str, int] = {"train": 0, "test": 1}
#: Items per task in the held-out split used by ``spikemllm demo`` (small so six settings run in minutes).
DEMO_N_PER_TASK = 40

_GENERATORS: dict[str, Callable[[np.random.Generator, int, str], list[Example]]] = {
    "textvqa": textvqa_like.generate,
    "docvqa": docvqa_like.generate,
    "ocrbench": ocrbench_like.generate,
    "scienceqa": scienceqa_like.generate,
    "mme": mme_like.generate,
}


def build(split: str = "test", n_per_task: int = DEMO_N_PER_TASK, seed: int = 0,
          tasks: tuple[str, ...] | list[str] | None = None) -> list[Example]:
    """Generate the mini-benchmark.

    Args:
        split: "train" (for training the bundled model) or "test" (held out: different random streams and,
            for the digit task, different handwriting scans).
        n_per_task: items per task (MME rounds up to whole image pairs).
        seed: base seed; the default 0 is what the bundled model's scores refer to.
        tasks: subset of the five benchmark names, default all.
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; use one of {sorted(SPLITS)}")
    tasks = tuple(tasks) if tasks is not None else BENCHMARKS
    unknown = [t for t in tasks if t not in _GENERATORS]
    if unknown:
        raise ConfigError(f"unknown mini-benchmark task(s) {unknown}; choose from {list(_GENERATORS)}")
    out: list[Example] = []
    for task in tasks:
        rng = np.random.default_rng([seed, SPLITS[split], BENCHMARKS.index(task)])
        out.extend(_GENERATORS[task](rng, n_per_task, split))
    return out


__all__ = ["build", "SPLITS", "DEMO_N_PER_TASK"]
