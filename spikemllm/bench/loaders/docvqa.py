"""DocVQA in the lmms-lab/DocVQA parquet layout (config folder ``DocVQA``; validation has answers)."""
from __future__ import annotations

from pathlib import Path

from ..example import Example
from .common import as_list, decode_image, find_parquet, read_rows

EXPECTED = """\
  <path>/DocVQA/validation-00000-of-0000N.parquet   (test-* has no answers)
  columns: questionId, question, answers (list of strings), image ({bytes, path}), question_types, docId, ...
"""
DEFAULT_SPLIT = "validation"


def load(path: str | Path, split: str = DEFAULT_SPLIT, limit: int | None = None) -> list[Example]:
    files = find_parquet(Path(path), split, "docvqa", EXPECTED)
    out = []
    for row in read_rows(files, ("questionId", "question", "answers", "image"), "docvqa", EXPECTED, limit):
        types = row.get("question_types")
        out.append(Example(uid=str(row["questionId"]), task="docvqa", image=decode_image(row["image"]),
                           question=row["question"], answers=as_list(row["answers"]),
                           category=types[0] if isinstance(types, list) and types else None))
    return out
