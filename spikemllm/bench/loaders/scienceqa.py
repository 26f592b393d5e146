"""ScienceQA in the derek-thomas/ScienceQA (``data/``) or lmms-lab/ScienceQA (``ScienceQA-IMG/``) parquet
layout. As in the usual image evaluation, questions without an image are skipped."""
from __future__ import annotations

from pathlib import Path

from ..example import Example
from ..prompts import option_letters
from .common import decode_image, find_parquet, read_rows

EXPECTED = """\
  <path>/data/test-00000-of-0000N.parquet            (derek-thomas/ScienceQA)
  or <path>/ScienceQA-IMG/test-00000-of-0000N.parquet (lmms-lab/ScienceQA)
  columns: image ({bytes, path} or null), question, choices (list of strings), answer (int index),
           hint, subject, ...
"""
DEFAULT_SPLIT = "test"


def load(path: str | Path, split: str = DEFAULT_SPLIT, limit: int | None = None) -> list[Example]:
    files = find_parquet(Path(path), split, "scienceqa", EXPECTED)
    out = []
    for i, row in enumerate(read_rows(files, ("image", "question", "choices", "answer"), "scienceqa", EXPECTED)):
        if limit is not None and len(out) >= limit:
            break
        if not row["image"]:
            continue
        choices = [str(c) for c in row["choices"]]
        hint = (row.get("hint") or "").strip()
        question = f"Context: {hint}\n{row['question']}" if hint else row["question"]
        out.append(Example(uid=f"scienceqa-{split}-{i}", task="scienceqa", image=decode_image(row["image"]),
                           question=question, answers=[option_letters(len(choices))[int(row["answer"])]],
                           choices=choices, category=row.get("subject")))
    return out
