"""ScienceQA in the derek-thomas/ScienceQA (``data/``) or lmms-lab/ScienceQA (``ScienceQA-IMG/``) parquet
layout. As in the usual image evaluation, questions without an image are skipped."""
from __future__ import annotations

from pathlib import Path

from ...errors import DataError
from ..example import Example
from ..prompts import option_letters
from .common import find_parquet, read_rows, record_guard

EXPECTED = """\
  <path>/data/test-00000-of-0000N.parquet            (derek-thomas/ScienceQA)
  or <path>/ScienceQA-IMG/test-00000-of-0000N.parquet (lmms-lab/ScienceQA)
  columns: image ({bytes, path} or null), question, choices (list of strings), answer (int index),
           hint, subject, ...
"""
DEFAULT_SPLIT = "test"


def load(path: str | Path, split: str = DEFAULT_SPLIT, limit: int | None = None,
         bad: list[DataError] | None = None) -> list[Example]:
    root = Path(path)
    out: list[Example] = []
    rows = read_rows(find_parquet(root, split, "scienceqa", EXPECTED), ("image", "question", "choices", "answer"),
                     "scienceqa", EXPECTED)
    for i, rec in enumerate(rows):
        if limit is not None and len(out) >= limit:
            break
        if not rec.row["image"]:
            continue
        rec.uid = f"scienceqa-{split}-{i}"
        with record_guard(rec, bad):
            choices = rec.answers("choices")
            answer = rec.row["answer"]
            if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
                raise rec.error(f"field 'answer' is {answer!r}; expected an index into the {len(choices)} choices")
            hint = (rec.text("hint", optional=True) or "").strip()
            question = rec.text("question")
            out.append(Example(uid=rec.uid, task="scienceqa", image=rec.image("image", root),
                               question=f"Context: {hint}\n{question}" if hint else question,
                               answers=[option_letters(len(choices))[answer]], choices=choices,
                               category=rec.text("subject", optional=True)))
    return out
