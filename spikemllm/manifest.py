"""The schema of a checkpoint's ``manifest.json``, checked (pydantic) before any field is used.

A hand-edited manifest is refused with one :class:`CheckpointError` line naming the field, whatever was
changed: a missing or mistyped field, an unknown key, a file entry that is not ``{"sha256", "bytes"}``, a
file path that leaves the folder, or a ``model_class`` outside the supported families.
``model_class`` is checked against an allow-list built from the families that have an adapter
(:func:`spikemllm.supported_model_types`) and the classes transformers registers for them, so ``AutoConfig``
or a class of an unsupported family never reaches ``getattr(transformers, ...)``.
"""
from __future__ import annotations

import functools
import json
import posixpath
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from .errors import CheckpointError

FORMAT = "spikemllm"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"

Name = Annotated[str, StringConstraints(min_length=1)]


@functools.lru_cache(maxsize=1)
def supported_model_classes() -> frozenset[str]:
    """transformers model classes of the supported families (every task head transformers maps them to)."""
    from transformers.models.auto import modeling_auto

    from .models import supported_model_types

    types = set(supported_model_types())
    names: set[str] = set()
    for attr in dir(modeling_auto):
        mapping = getattr(modeling_auto, attr)
        if not attr.startswith("MODEL") or not attr.endswith("_MAPPING_NAMES") or not isinstance(mapping, dict):
            continue
        for model_type, cls in mapping.items():
            if model_type in types:
                names.update([cls] if isinstance(cls, str) else cls)
    return frozenset(n for n in names if not n.endswith("Config"))


class FileEntry(BaseModel):
    """Size and checksum of one file of the checkpoint."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    bytes: Annotated[int, Field(ge=0)]


class Manifest(BaseModel):
    """What :func:`spikemllm.save` writes; every key is required and no other key is allowed."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    format: Literal["spikemllm"]
    format_version: Literal[1]
    spikemllm: str
    torch: str
    transformers: str
    model_class: str
    attn_implementation: str | None
    packed_int4: dict[Name, list[Annotated[int, Field(ge=0)]]]
    aliases: dict[Name, Name]
    input_transforms: dict[Name, dict[str, Any]]
    files: dict[str, FileEntry]

    @field_validator("model_class")
    @classmethod
    def _supported(cls, v: str) -> str:
        if v not in supported_model_classes():
            raise ValueError(f"{v!r} is not a model class of a supported family")
        return v

    @field_validator("packed_int4")
    @classmethod
    def _shapes(cls, v: dict[str, list[int]]) -> dict[str, list[int]]:
        for k, shape in v.items():
            if not shape or not all(s > 0 for s in shape):
                raise ValueError(f"{k}: shape {shape} must be a non-empty list of positive sizes")
        return v

    @field_validator("files")
    @classmethod
    def _inside(cls, v: dict[str, FileEntry]) -> dict[str, FileEntry]:
        for name in v:
            norm = posixpath.normpath(name) if name else ""
            if not name or name != norm or norm.startswith(("/", "../")) or norm in (".", "..") or "\\" in name:
                raise ValueError(f"file name {name!r} is not a plain relative path inside the checkpoint")
        if WEIGHTS not in v:
            raise ValueError(f"no entry for {WEIGHTS}")
        return v


def _first_errors(e: ValidationError, n: int = 3) -> str:
    parts = []
    for err in e.errors()[:n]:
        loc = ".".join(str(x) if str(x).isprintable() else repr(x) for x in err["loc"]) or "(top level)"
        parts.append(f"lacks {loc}" if err["type"] == "missing" else f"{loc}: {err['msg']}")
    more = f" (+{e.error_count() - n} more)" if e.error_count() > n else ""
    return "; ".join(parts).replace("\n", "\\n") + more


def parse_manifest(data: Any, where: str | Path = "manifest.json") -> Manifest:
    """Validate a decoded ``manifest.json``; the format and version are checked first, with their own message."""
    if not isinstance(data, dict):
        raise CheckpointError(f"{where} is not a JSON object; it is not a spikemllm manifest")
    version = data.get("format_version")
    if data.get("format") != FORMAT or type(version) is not int or version != FORMAT_VERSION:
        raise CheckpointError(f"{where} has format {data.get('format')!r} v{data.get('format_version')}; this "
                              f"spikemllm reads {FORMAT!r} v{FORMAT_VERSION}")
    try:
        return Manifest.model_validate(data)
    except ValidationError as e:
        raise CheckpointError(f"{where} is invalid: {_first_errors(e)}") from None


def read_manifest_file(path: Path) -> Manifest:
    """Decode and validate ``path`` (a manifest.json); one CheckpointError line for anything wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is corrupt: {e}") from None
    return parse_manifest(data, path)


__all__ = ["FORMAT", "FORMAT_VERSION", "FileEntry", "Manifest", "WEIGHTS", "parse_manifest",
           "read_manifest_file", "supported_model_classes"]
