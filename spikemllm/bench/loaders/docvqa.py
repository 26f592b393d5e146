"""DocVQA in the lmms-lab/DocVQA parquet layout (config folder ``DocVQA``; validation has answers)."""
from __future__ import annotations

from pathlib import Path

from ...errors import DataError
from ..example import Example
from .common import find_parquet, read_rows, record_guard

EXPECTED = """\
  <path>/DocVQA/validation-00000-of-0000N.parquet   (test-* has no answers)
  columns: questionId, question, answers (list of strings), image ({bytes, path}), question_types, docId, ...
"""
DEFAULT_SPLIT = "validation"


def load(path: str | Path, split: str = DEFAULT_SPLIT, limit: int | None = None,
         bad: list[DataError] | None = None) -> list[Example]:
    root = Path(path)
    out: list[Example] = []
    columns = ("questionId", "question", "answers", "image")
    for rec in read_rows(find_parquet(root, split, "docvqa", EXPECTED), columns, "docvqa", EXPECTED):
        if limit is not None and len(out) >= limit:
            break
        with record_guard(rec, bad):
            uid = rec.ident("questionId")
            types = rec.row.get("question_types")
            category = types[0] if isinstance(types, list) and types and isinstance(types[0], str) else None
            out.append(Example(uid=uid, task="docvqa", image=rec.image("image", root), question=rec.text("question"),
                               answers=rec.answers("answers"), category=category))
    return out
