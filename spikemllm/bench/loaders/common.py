"""Shared reading of Hugging Face style parquet shards and image cells, with layout errors that say what
was expected, so a user pointing at the wrong folder learns where the files should be."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Iterator

from PIL import Image


class LayoutError(FileNotFoundError):
    """The local path does not hold the dataset in its published layout."""

    def __init__(self, dataset: str, path: Path, problem: str, expected: str) -> None:
        super().__init__(
            f"{dataset}: {problem} under {path}.\nExpected layout (as on the dataset's Hugging Face page):\n"
            f"{expected.rstrip()}\nDownload it elsewhere (e.g. `huggingface-cli download --repo-type dataset "
            f"...`), copy it here, and pass the folder with --data."
        )


def _pyarrow_parquet():
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is a declared dependency
        raise ImportError("reading the real datasets needs pyarrow: pip install pyarrow") from exc
    return pq


def find_parquet(root: Path, split: str, dataset: str, expected: str) -> list[Path]:
    """Shards named ``<split>-*.parquet`` (or ``<split>/*.parquet``) anywhere under ``root``, sorted."""
    root = Path(root)
    if not root.exists():
        raise LayoutError(dataset, root, "the path does not exist", expected)
    files = sorted(set(root.rglob(f"{split}-*.parquet")) | set(root.rglob(f"{split}/*.parquet")))
    if root.is_file() and root.suffix == ".parquet":
        files = [root]
    if not files:
        raise LayoutError(dataset, root, f"no '{split}-*.parquet' shard", expected)
    return files


def read_rows(files: list[Path], required: tuple[str, ...], dataset: str, expected: str,
              limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Rows of the shards as dicts; checks the required columns first (one clear error, not a KeyError)."""
    pq = _pyarrow_parquet()
    seen = 0
    for f in files:
        pf = pq.ParquetFile(f)
        names = set(pf.schema_arrow.names)
        missing = [c for c in required if c not in names]
        if missing:
            raise LayoutError(dataset, f, f"missing column(s) {missing} (found {sorted(names)})", expected)
        for batch in pf.iter_batches(batch_size=64):
            for row in batch.to_pylist():
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield row


def decode_image(cell: Any, base: Path | None = None) -> Image.Image:
    """An RGB image from a parquet image cell ({"bytes", "path"}), raw bytes or a path relative to ``base``."""
    if isinstance(cell, dict):
        if cell.get("bytes"):
            return Image.open(io.BytesIO(cell["bytes"])).convert("RGB")
        cell = cell.get("path")
    if isinstance(cell, (bytes, bytearray)):
        return Image.open(io.BytesIO(cell)).convert("RGB")
    if isinstance(cell, str):
        p = Path(cell) if base is None else Path(base) / cell
        return Image.open(p).convert("RGB")
    raise ValueError(f"cannot read an image from a cell of type {type(cell).__name__}")


def as_list(value: Any) -> list[str]:
    """Gold answers as a list of strings (datasets store one string or a list)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]
