"""OCRBench in either published layout: the GitHub release (``OCRBench.json`` + ``OCRBench_Images/``) or
the echo840/OCRBench parquet on Hugging Face."""
from __future__ import annotations

import json
from pathlib import Path

from ..example import Example
from .common import LayoutError, as_list, decode_image, find_parquet, read_rows

EXPECTED = """\
  <path>/OCRBench.json + <path>/OCRBench_Images/<dataset>/<file>   (GitHub release)
    entries: {"dataset_name", "id", "image_path" (relative to OCRBench_Images), "question",
              "answers" (string or list), "type" (question category)}
  or <path>/data/test-00000-of-0000N.parquet                       (echo840/OCRBench)
    columns: question, answer (list), question_type, image ({bytes, path}), dataset
"""
DEFAULT_SPLIT = "test"


def _from_json(json_file: Path, limit: int | None) -> list[Example]:
    images = json_file.parent / "OCRBench_Images"
    base = images if images.is_dir() else json_file.parent
    entries = json.loads(json_file.read_text())
    if not isinstance(entries, list):
        raise LayoutError("ocrbench", json_file, "the JSON is not a list of entries", EXPECTED)
    out = []
    for i, e in enumerate(entries[:limit] if limit is not None else entries):
        missing = [k for k in ("image_path", "question", "answers", "type") if k not in e]
        if missing:
            raise LayoutError("ocrbench", json_file, f"entry {i} lacks {missing}", EXPECTED)
        out.append(Example(uid=f"ocrbench-{e.get('id', i)}", task="ocrbench",
                           image=decode_image(e["image_path"], base), question=e["question"],
                           answers=as_list(e["answers"]), category=e["type"],
                           meta={"dataset_name": e.get("dataset_name")}))
    return out


def load(path: str | Path, split: str = DEFAULT_SPLIT, limit: int | None = None) -> list[Example]:
    root = Path(path)
    json_files = [root] if root.suffix == ".json" else sorted(root.rglob("OCRBench.json")) if root.is_dir() else []
    if json_files:
        return _from_json(json_files[0], limit)
    files = find_parquet(root, split, "ocrbench", EXPECTED)
    out = []
    for i, row in enumerate(read_rows(files, ("question", "answer", "question_type", "image"), "ocrbench",
                                      EXPECTED, limit)):
        out.append(Example(uid=f"ocrbench-{i}", task="ocrbench", image=decode_image(row["image"]),
                           question=row["question"], answers=as_list(row["answer"]), category=row["question_type"],
                           meta={"dataset_name": row.get("dataset")}))
    return out
