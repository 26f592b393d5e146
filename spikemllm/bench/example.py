"""One evaluation item, shared by the real-dataset loaders, the mini-benchmark and the harness.

Every source (parquet, JSON, generator) is turned into this one shape so that the harness and the metrics
never need to know where an item came from.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from ..errors import DataError

#: The five benchmarks of the paper, in the order the tables print them.
BENCHMARKS: tuple[str, ...] = ("textvqa", "docvqa", "ocrbench", "scienceqa", "mme")


@dataclass
class Example:
    """A question about one image with its gold answers.

    Attributes:
        uid: unique id inside its benchmark (stable across runs, used to order and merge shards).
        task: benchmark name, one of :data:`BENCHMARKS`; selects the metric.
        image: the RGB image the question is about.
        question: the question text as the dataset gives it (without options or answer instructions).
        answers: gold answers. TextVQA: the 10 annotator answers; DocVQA: all accepted answers;
            OCRBench: accepted strings; ScienceQA: the correct option letter; MME: "Yes" or "No".
        category: OCRBench question type, MME subtask or ScienceQA subject; metrics group by it.
        choices: ScienceQA options in order (letters A, B, C, ... are assigned by position).
        group: items scored together; MME's acc+ needs both questions of one image right.
        meta: anything else worth keeping in the JSON output (never read by metrics).
    """

    uid: str
    task: str
    image: Image.Image
    question: str
    answers: list[str]
    category: str | None = None
    choices: list[str] | None = None
    group: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in BENCHMARKS:
            raise DataError(f"unknown task {self.task!r}; expected one of {BENCHMARKS}")
        if not self.answers:
            raise DataError(f"example {self.uid!r} has no gold answer")
