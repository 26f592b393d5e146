"""TextVQA in the lmms-lab/textvqa parquet layout (validation split holds the 10 answers per question)."""
from __future__ import annotations

from pathlib import Path

from ..example import Example
from .common import as_list, decode_image, find_parquet, read_rows

EXPECTED = """\
  <path>/data/validation-00000-of-0000N.parquet   (also train-*, test-*; test has no answers)
  columns: question_id, question, answers (list of 10 strings), image ({bytes, path}), ...
"""
DEFAULT_SPLIT = "validation"


def load(path: str | Path, split: str = DEFAULT_SPLIT, limit: int | None = None) -> list[Example]:
    files = find_parquet(Path(path), split, "textvqa", EXPECTED)
    return [
        Example(uid=str(row["question_id"]), task="textvqa", image=decode_image(row["image"]),
                question=row["question"], answers=as_list(row["answers"]))
        for row in read_rows(files, ("question_id", "question", "answers", "image"), "textvqa", EXPECTED, limit)
    ]
