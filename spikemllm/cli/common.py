"""Helpers shared by subcommands: loading a model from ``bundled``, a spikemllm checkpoint or a HF folder."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn


def load_model(spec: str) -> tuple[nn.Module, Any]:
    """Return ``(model, processor_or_tokenizer_or_None)`` for ``bundled`` or a local folder (never downloads)."""
    if spec == "bundled":
        from ..zoo import load_bundled

        return load_bundled()
    p = Path(spec)
    if not p.is_dir():
        raise FileNotFoundError(f"--model {spec!r} is neither 'bundled' nor a folder; give a local Hugging Face "
                                "model folder (config.json + *.safetensors) or a spikemllm checkpoint")
    if (p / "manifest.json").is_file():
        from ..io import load

        return load(p), _processor(p)
    if not (p / "config.json").is_file():
        raise FileNotFoundError(f"{p} has no config.json; it is not a Hugging Face model folder")
    import transformers
    from safetensors import SafetensorError

    errors: dict[str, list[str]] = {}
    for auto in ("AutoModelForImageTextToText", "AutoModelForCausalLM", "AutoModel"):
        try:
            model = getattr(transformers, auto).from_pretrained(str(p), local_files_only=True)
            return model.eval(), _processor(p)
        except (ValueError, KeyError, OSError, SafetensorError) as e:  # a corrupt weights file: SafetensorError
            errors.setdefault(" ".join(str(e).split()), []).append(auto)  # one line; same message once
    real = {m: a for m, a in errors.items() if not m.startswith("Unrecognized configuration class")}
    errors = real or errors  # "this Auto class does not fit" hides the real cause otherwise
    raise ValueError(f"cannot load {p} with transformers: " +
                     " | ".join(f"{', '.join(autos)}: {msg}" for msg, autos in errors.items()))


def _processor(p: Path) -> Any:
    import transformers

    for auto in ("AutoProcessor", "AutoTokenizer"):
        try:
            return getattr(transformers, auto).from_pretrained(str(p), local_files_only=True)
        except Exception:  # noqa: BLE001  (a model folder without a processor is fine)
            continue
    return None
