"""Shared reading of Hugging Face style parquet shards and image cells, every record checked as it is read.

Two kinds of error, both :class:`spikemllm.errors.DataError`:

* :class:`LayoutError`: the folder does not hold the dataset in its published layout (no shard, missing
  columns); the message shows the expected layout so a user pointing at the wrong place learns where the
  files should be.
* a record error: one line naming the file, the record (index, and uid when known) and the problem: a field
  of the wrong type, an image that is not an image, is truncated, is a folder, or whose path leaves the data
  folder. With a ``bad`` list (``--skip-bad``) such records are logged, collected and skipped instead.
"""
from __future__ import annotations

import io
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from PIL import Image

from ...errors import DataError
from ...logs import get_logger

log = get_logger(__name__)


class LayoutError(DataError, FileNotFoundError):
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
    files = [f for f in files if f.is_file()]
    if not files:
        raise LayoutError(dataset, root, f"no '{split}-*.parquet' shard", expected)
    return files


class Record:
    """One row or entry being read: typed accessors that raise a DataError naming ``file``, index and uid."""

    def __init__(self, file: Path, index: int, row: Any) -> None:
        self.file, self.index, self.row = file, index, row
        self.uid: str | None = None

    def error(self, problem: str) -> DataError:
        uid = f" (uid {self.uid})" if self.uid is not None else ""
        return DataError(f"{self.file}: record {self.index}{uid}: {problem}")

    def _get(self, key: str) -> Any:
        if not isinstance(self.row, dict):
            raise self.error(f"is a {type(self.row).__name__}, not an object with fields")
        if key not in self.row:
            raise self.error(f"has no field {key!r}")
        return self.row[key]

    def text(self, key: str, optional: bool = False) -> str | None:
        """A string field (``optional``: may be missing or null)."""
        if optional and (not isinstance(self.row, dict) or self.row.get(key) is None):
            return None
        v = self._get(key)
        if not isinstance(v, str):
            raise self.error(f"field {key!r} is {_kind(v)}, not a string")
        return v

    def ident(self, key: str, prefix: str = "") -> str:
        """An id field (string or integer), which also names the record in later errors."""
        v = self._get(key)
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            raise self.error(f"field {key!r} is {_kind(v)}, not a string or integer id")
        self.uid = f"{prefix}{v}"
        return self.uid

    def answers(self, key: str) -> list[str]:
        """Gold answers: one string or a non-empty list of strings (numbers are accepted as text)."""
        v = self._get(key)
        items = v if isinstance(v, list) else [v]
        if not items or not all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in items):
            raise self.error(f"field {key!r} is {_kind(v)}; expected a string or a non-empty list of strings")
        return [str(a) for a in items]

    def image(self, key: str, base: Path) -> Image.Image:
        """The record's image, as an RGB PIL image (see :func:`decode_image`)."""
        cell = self._get(key)
        try:
            return decode_image(cell, base)
        except DataError as e:
            raise self.error(f"field {key!r}: {e}") from None


def _kind(v: Any) -> str:
    return "null" if v is None else f"a {type(v).__name__}"


@contextmanager
def record_guard(rec: Record, bad: list[DataError] | None) -> Iterator[None]:
    """Raise a record's DataError, or with a ``bad`` list: log it, collect it and skip the record."""
    try:
        yield
    except DataError as e:
        if bad is None:
            raise
        log.warning(f"skipped: {e}")
        bad.append(e)
    except ValueError as e:  # Example's own checks (no gold answer, ...)
        err = rec.error(str(e))
        if bad is None:
            raise err from None
        log.warning(f"skipped: {err}")
        bad.append(err)


def read_rows(files: list[Path], required: tuple[str, ...], dataset: str, expected: str) -> Iterator[Record]:
    """The rows of the shards as :class:`Record`; checks each shard's columns first (one clear LayoutError)."""
    pq = _pyarrow_parquet()
    import pyarrow as pa

    for f in files:
        index = 0
        try:
            pf = pq.ParquetFile(f)
            names = set(pf.schema_arrow.names)
            missing = [c for c in required if c not in names]
            if missing:
                raise LayoutError(dataset, f, f"missing column(s) {missing} (found {sorted(names)})", expected)
            for batch in pf.iter_batches(batch_size=64):
                for row in batch.to_pylist():
                    yield Record(f, index, row)
                    index += 1
        except DataError:
            raise
        except (pa.ArrowException, OSError, ValueError) as e:  # corrupt pages, bad UTF-8 in a string column, ...
            raise DataError(f"{f} cannot be read as parquet (at record {index}): {' '.join(str(e).split())}") \
                from None


def _open_image(source: Any, what: str) -> Image.Image:
    try:
        with Image.open(source) as im:
            im.load()  # decode now: a truncated or corrupt file fails here, not in the middle of a run
            return im.convert("RGB")
    except Exception as e:  # noqa: BLE001  (PIL raises many types on malformed data; each means "not an image")
        raise DataError(f"{what}: not a readable image ({type(e).__name__}: {' '.join(str(e).split())[:200]})") \
            from None


def resolve_inside(base: Path, rel: str) -> Path:
    """``base / rel``, refused (DataError) when ``rel`` is absolute or leads out of ``base`` through ``..``.

    The check is on the path as written (symlinks inside the data folder, such as a Hugging Face cache's,
    are followed as usual).
    """
    if not rel or os.path.isabs(rel) or rel.startswith(("~", "\\")):
        raise DataError(f"image path {rel!r} is not a path relative to the data folder {base}")
    root = os.path.normpath(os.path.abspath(base))
    joined = os.path.normpath(os.path.join(root, rel))
    if os.path.commonpath([root, joined]) != root:
        raise DataError(f"image path {rel!r} leads outside the data folder {base}; refused")
    return Path(joined)


def decode_image(cell: Any, base: Path | None = None) -> Image.Image:
    """An RGB image from a parquet image cell (``{"bytes", "path"}``), raw bytes, or a path inside ``base``."""
    if isinstance(cell, dict):
        if cell.get("bytes"):
            cell = cell["bytes"]
        else:
            cell = cell.get("path")
    if isinstance(cell, (bytes, bytearray)):
        return _open_image(io.BytesIO(cell), f"the image bytes ({len(cell)} bytes)")
    if isinstance(cell, str):
        if base is None:
            raise DataError(f"image path {cell!r} needs a data folder to be read from")
        p = resolve_inside(Path(base), cell)
        if p.is_dir():
            raise DataError(f"image path {cell!r} is a folder, not an image file")
        if not p.is_file():
            raise DataError(f"image file {p} does not exist")
        return _open_image(p, f"image file {p}")
    raise DataError(f"cannot read an image from {_kind(cell)}")


def as_list(value: Any) -> list[str]:
    """Gold answers as a list of strings (datasets store one string or a list)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]
