"""MME in the lmms-lab/MME parquet layout: two yes/no questions per image, grouped by ``question_id``."""
from __future__ import annotations

from pathlib import Path

from ...errors import DataError
from ..example import Example
from .common import find_parquet, read_rows, record_guard

EXPECTED = """\
  <path>/data/test-00000-of-00004-....parquet
  columns: question_id (image name, shared by its two questions), image ({bytes, path}), question,
           answer ("Yes"/"No"), category (e.g. existence, OCR, code_reasoning)
"""
DEFAULT_SPLIT = "test"


def load(path: str | Path, split: str = DEFAULT_SPLIT, limit: int | None = None,
         bad: list[DataError] | None = None) -> list[Example]:
    root = Path(path)
    out: list[Example] = []
    columns = ("question_id", "image", "question", "answer", "category")
    rows = read_rows(find_parquet(root, split, "mme", EXPECTED), columns, "mme", EXPECTED)
    for i, rec in enumerate(rows):
        if limit is not None and len(out) >= limit:
            break
        with record_guard(rec, bad):
            qid, category = rec.ident("question_id"), rec.text("category")
            rec.uid = f"mme-{i}"
            out.append(Example(uid=rec.uid, task="mme", image=rec.image("image", root), question=rec.text("question"),
                               answers=[rec.text("answer")], category=category, group=f"{category}/{qid}"))
    return out
