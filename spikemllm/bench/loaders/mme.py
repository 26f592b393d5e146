"""MME in the lmms-lab/MME parquet layout: two yes/no questions per image, grouped by ``question_id``."""
from __future__ import annotations

from pathlib import Path

from ..example import Example
from .common import decode_image, find_parquet, read_rows

EXPECTED = """\
  <path>/data/test-00000-of-00004-....parquet
  columns: question_id (image name, shared by its two questions), image ({bytes, path}), question,
           answer ("Yes"/"No"), category (e.g. existence, OCR, code_reasoning)
"""
DEFAULT_SPLIT = "test"


def load(path: str | Path, split: str = DEFAULT_SPLIT, limit: int | None = None) -> list[Example]:
    files = find_parquet(Path(path), split, "mme", EXPECTED)
    out = []
    rows = read_rows(files, ("question_id", "image", "question", "answer", "category"), "mme", EXPECTED, limit)
    for i, row in enumerate(rows):
        out.append(Example(uid=f"mme-{i}", task="mme", image=decode_image(row["image"]), question=row["question"],
                           answers=[str(row["answer"])], category=row["category"],
                           group=f"{row['category']}/{row['question_id']}"))
    return out
