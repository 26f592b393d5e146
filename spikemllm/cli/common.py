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

    errors = []
    for auto in ("AutoModelForImageTextToText", "AutoModelForCausalLM", "AutoModel"):
        try:
            model = getattr(transformers, auto).from_pretrained(str(p), local_files_only=True)
            return model.eval(), _processor(p)
        except (ValueError, KeyError, OSError) as e:
            errors.append(f"{auto}: {e}")
    raise ValueError(f"cannot load {p} with transformers: " + " | ".join(errors))


def _processor(p: Path) -> Any:
    import transformers

    for auto in ("AutoProcessor", "AutoTokenizer"):
        try:
            return getattr(transformers, auto).from_pretrained(str(p), local_files_only=True)
        except Exception:  # noqa: BLE001  (a model folder without a processor is fine)
            continue
    return None
