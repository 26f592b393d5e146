"""OCRBench in either published layout: the GitHub release (``OCRBench.json`` + ``OCRBench_Images/``) or
the echo840/OCRBench parquet on Hugging Face."""
from __future__ import annotations

from pathlib import Path

from ...errors import DataError
from ...jsonio import read_json
from ..example import Example
from .common import LayoutError, Record, find_parquet, read_rows, record_guard

EXPECTED = """\
  <path>/OCRBench.json + <path>/OCRBench_Images/<dataset>/<file>   (GitHub release)
    entries: {"dataset_name", "id", "image_path" (relative to OCRBench_Images), "question",
              "answers" (string or list), "type" (question category)}
  or <path>/data/test-00000-of-0000N.parquet                       (echo840/OCRBench)
    columns: question, answer (list), question_type, image ({bytes, path}), dataset
"""
DEFAULT_SPLIT = "test"


def _from_json(json_file: Path, limit: int | None, bad: list[DataError] | None) -> list[Example]:
    images = json_file.parent / "OCRBench_Images"
    base = images if images.is_dir() else json_file.parent
    entries = read_json(json_file, DataError, "the OCRBench JSON")
    if not isinstance(entries, list):
        raise LayoutError("ocrbench", json_file, "the JSON is not a list of entries", EXPECTED)
    out: list[Example] = []
    for i, e in enumerate(entries):
        if limit is not None and len(out) >= limit:
            break
        rec = Record(json_file, i, e)
        with record_guard(rec, bad):
            uid = rec.ident("id", "ocrbench-") if isinstance(e, dict) and "id" in e else f"ocrbench-{i}"
            rec.uid = uid
            out.append(Example(uid=uid, task="ocrbench", image=rec.image("image_path", base),
                               question=rec.text("question"), answers=rec.answers("answers"),
                               category=rec.text("type"), meta={"dataset_name": rec.text("dataset_name", True)}))
    return out


def load(path: str | Path, split: str = DEFAULT_SPLIT, limit: int | None = None,
         bad: list[DataError] | None = None) -> list[Example]:
    root = Path(path)
    json_files = [root] if root.suffix == ".json" else sorted(root.rglob("OCRBench.json")) if root.is_dir() else []
    if json_files:
        return _from_json(json_files[0], limit, bad)
    out: list[Example] = []
    for i, rec in enumerate(read_rows(find_parquet(root, split, "ocrbench", EXPECTED),
                                      ("question", "answer", "question_type", "image"), "ocrbench", EXPECTED)):
        if limit is not None and len(out) >= limit:
            break
        rec.uid = f"ocrbench-{i}"
        with record_guard(rec, bad):
            out.append(Example(uid=rec.uid, task="ocrbench", image=rec.image("image", root),
                               question=rec.text("question"), answers=rec.answers("answer"),
                               category=rec.text("question_type"), meta={"dataset_name": rec.text("dataset", True)}))
    return out
