"""One way in for every command that reads a model: ``bundled``, a spikemllm checkpoint, or a HF folder.

:func:`resolve_model` looks at the path without loading anything (so commands can check their outputs
against it first and fail fast); :func:`open_model` loads it:

* ``"bundled"``: the tiny LLaVA shipped in :mod:`spikemllm.zoo`;
* a folder with ``manifest.json``: a checkpoint written by :func:`spikemllm.save`, loaded by
  :func:`spikemllm.load` (converted, bit-identical to what was saved);
* a folder with ``config.json``: a Hugging Face model, loaded by the class its config names
  (``architectures``), else (no such entry) by the first Auto class that loads it cleanly.

A transformers load that reports any missing, unexpected or mismatched weight is an error, never a
randomly initialised model: a checkpoint of another kind, a truncated export or a folder whose weights do
not fit its config is refused by name. Nothing is downloaded.

Placement (:mod:`spikemllm.placement`): ``device``, ``dtype``, ``offload`` and ``max_memory`` apply to all three
kinds alike. A Hugging Face folder (and ``bundled``) is loaded straight into place by transformers (with
accelerate's ``device_map="auto"`` when offloading, so a model larger than memory never is in memory whole); a
spikemllm checkpoint is loaded, then moved or dispatched.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import nn

from .errors import CheckpointError, ConfigError, PathNotFound
from .logs import get_logger
from .placement import Placement, hf_load_kwargs, place, placement

log = get_logger(__name__)

Kind = Literal["bundled", "checkpoint", "hf"]
AUTO_CLASSES = ("AutoModelForImageTextToText", "AutoModelForCausalLM", "AutoModel")
_HINT = "give 'bundled', a local Hugging Face model folder (config.json + *.safetensors) or a spikemllm checkpoint"


@dataclass(frozen=True)
class ModelSource:
    """A resolved ``--model``: what the user wrote, which kind it is, and the folder it lives in."""

    spec: str
    kind: Kind
    path: Path


def resolve_model(spec: str | os.PathLike | ModelSource, what: str = "--model") -> ModelSource:
    """Classify ``spec`` without loading it; FileNotFoundError naming the path when it is none of the three."""
    if isinstance(spec, ModelSource):
        return spec
    spec = os.fspath(spec)
    if spec == "bundled":
        from .zoo import BUNDLED_DIR

        if not (BUNDLED_DIR / "model.safetensors").is_file():
            raise PathNotFound(f"no bundled model in {BUNDLED_DIR} (model.safetensors expected); reinstall "
                               "spikemllm, or train it with: python scripts/train_tiny_vlm.py")
        return ModelSource(spec, "bundled", BUNDLED_DIR)
    p = Path(spec).expanduser()
    if not p.exists():
        raise PathNotFound(f"{what} {spec!r} does not exist: it is neither 'bundled' nor a folder; give a "
                           "local Hugging Face model folder (config.json + *.safetensors) or a spikemllm "
                           "checkpoint")
    if not p.is_dir():
        raise PathNotFound(f"{what} {spec!r} is a file, not a folder; {_HINT}")
    if (p / "manifest.json").is_file():
        return ModelSource(spec, "checkpoint", p)
    if (p / "config.json").is_file():
        return ModelSource(spec, "hf", p)
    raise PathNotFound(f"{p} has no config.json (and no manifest.json): it is neither a Hugging Face model "
                       f"folder nor a spikemllm checkpoint; {_HINT}")


def open_model(spec: str | os.PathLike | ModelSource, *, what: str = "--model", device: Any = "cpu",
               dtype: Any = "auto", offload: str | os.PathLike | None = None, max_memory: Any = None,
               placed: Placement | None = None) -> tuple[nn.Module, Any]:
    """``(model in eval mode, processor or tokenizer or None)`` for ``spec`` (see the module doc).

    ``device`` (``"cpu"`` by default in Python; the CLI's ``--device`` defaults to ``auto``), ``dtype``,
    ``offload`` and ``max_memory`` are :func:`spikemllm.placement.placement`'s; ``placed`` passes them already
    resolved (what the CLI does).
    """
    p = placed if placed is not None else placement(device, dtype, offload, max_memory)
    src = resolve_model(spec, what)
    if src.kind == "checkpoint":
        return _open_checkpoint(src.path, p), processor_of(src.path)
    if src.kind == "bundled":
        import transformers

        from .zoo import bundled_model_class

        model = _from_pretrained_strict(bundled_model_class(), src.path, attn_implementation="eager",
                                        **hf_load_kwargs(p))
        return model, transformers.AutoProcessor.from_pretrained(str(src.path), local_files_only=True)
    return _open_hf(src.path, p), processor_of(src.path)


def _open_checkpoint(path: Path, p: Placement) -> nn.Module:
    """A spikemllm checkpoint, placed. :func:`spikemllm.load` builds it in RAM (its integer codes are a byte per
    weight at most); offloading then dispatches its float parts."""
    import inspect

    from .io import load

    if not p.dispatched and {"dtype", "device"} <= set(inspect.signature(load).parameters):
        return load(path, dtype=p.dtype, device=p.device)  # loads straight into place
    return place(load(path), p)


def _open_hf(p: Path, placed: Placement | None = None) -> nn.Module:
    import transformers
    from safetensors import SafetensorError

    from .jsonio import read_json

    cfg = read_json(p / "config.json", CheckpointError, "a transformers config")
    arch = cfg.get("architectures") if isinstance(cfg, dict) else None
    declared = [a for a in arch if isinstance(a, str) and hasattr(transformers, a)] if isinstance(arch, list) else []
    # The class the folder was saved from is the one to load it with; the Auto classes only guess.
    names = declared[:1] or list(AUTO_CLASSES)
    errors: dict[str, list[str]] = {}
    kwargs = hf_load_kwargs(placed or Placement())
    for name in dict.fromkeys(names):
        try:
            return _from_pretrained_strict(getattr(transformers, name), p, **kwargs)
        except ConfigError:
            raise  # about the placement, not the class: every class would say the same
        except (ValueError, KeyError, OSError, SafetensorError) as e:  # a corrupt weights file: SafetensorError
            errors.setdefault(" ".join(str(e).split()), []).append(name)  # one line; same message once
    real = {m: a for m, a in errors.items() if not m.startswith("Unrecognized configuration class")}
    errors = real or errors  # "this Auto class does not fit" hides the real cause otherwise
    raise CheckpointError(f"cannot load {p} with transformers: " +
                          " | ".join(f"{', '.join(classes)}: {msg}" for msg, classes in errors.items()))


def _from_pretrained_strict(cls: Any, path: Path, **kwargs: Any) -> nn.Module:
    """``cls.from_pretrained(path)`` that raises instead of initialising any weight at random."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its load report would repeat, in many lines, what the error says
    try:
        model, info = cls.from_pretrained(str(path), local_files_only=True, output_loading_info=True, **kwargs)
    except ValueError as e:
        if "offload" in str(e) and kwargs.get("device_map") == "auto" and "offload_folder" not in kwargs:
            raise ConfigError("the model does not fit --max-memory: give --offload DIR for the part that does not") \
                from None
        raise
    finally:
        hf_logging.set_verbosity(level)
    problems = []
    for key, label in (("missing_keys", "missing from the folder (they would be random)"),
                       ("unexpected_keys", "in the folder but not in the model"),
                       ("mismatched_keys", "of the wrong shape")):
        keys = sorted(str(k) for k in (info.get(key) or ()))
        if keys:
            problems.append(f"{len(keys)} weights {label}, e.g. {', '.join(keys[:3])}")
    if info.get("error_msgs"):
        problems.append(str(info["error_msgs"][0]).splitlines()[0])
    if problems:
        raise ValueError(f"{type(model).__name__} does not fit the weights: " + "; ".join(problems))
    return model.eval()


def processor_of(p: Path) -> Any:
    """The processor (or else tokenizer) saved beside a model, or None."""
    import transformers

    for auto in ("AutoProcessor", "AutoTokenizer"):
        try:
            return getattr(transformers, auto).from_pretrained(str(p), local_files_only=True)
        except Exception:  # noqa: BLE001  (a model folder without a processor is fine)
            continue
    return None


def open_config(spec: str | os.PathLike, what: str = "--model") -> Any:
    """The transformers config of ``spec`` (any kind above, or a config.json file), without loading weights."""
    import transformers

    p = Path(os.fspath(spec)).expanduser()
    folder = p.parent if p.is_file() else resolve_model(spec, what).path
    cfg_file = p if p.is_file() else folder / "config.json"
    try:
        return transformers.AutoConfig.from_pretrained(str(folder))
    except (ValueError, OSError, KeyError, TypeError) as e:
        raise CheckpointError(f"{cfg_file} cannot be read as a transformers config: {' '.join(str(e).split())}") \
            from None


__all__ = ["AUTO_CLASSES", "ModelSource", "open_config", "open_model", "processor_of", "resolve_model"]
