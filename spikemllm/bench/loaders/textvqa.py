"""TextVQA in the lmms-lab/textvqa parquet layout (validation split holds the 10 answers per question)."""
from __future__ import annotations

from pathlib import Path

from ...errors import DataError
from ..example import Example
from .common import find_parquet, read_rows, record_guard

EXPECTED = """\
  <path>/data/validation-00000-of-0000N.parquet   (also train-*, test-*; test has no answers)
  columns: question_id, question, answers (list of 10 strings), image ({bytes, path}), ...
"""
DEFAULT_SPLIT = "validation"


def load(path: str | Path, split: str = DEFAULT_SPLIT, limit: int | None = None,
         bad: list[DataError] | None = None) -> list[Example]:
    root = Path(path)
    out: list[Example] = []
    columns = ("question_id", "question", "answers", "image")
    for rec in read_rows(find_parquet(root, split, "textvqa", EXPECTED), columns, "textvqa", EXPECTED):
        if limit is not None and len(out) >= limit:
            break
        with record_guard(rec, bad):
            out.append(Example(uid=rec.ident("question_id"), task="textvqa", image=rec.image("image", root),
                               question=rec.text("question"), answers=rec.answers("answers")))
    return out
