"""Models that ship with spikemllm: ``load_bundled()`` gives the trained tiny LLaVA and its processor.

The bundled weights are trained by ``scripts/train_tiny_vlm.py`` on the mini-benchmark's train split,
so scores on its held-out split (and quantization/spiking gaps) are meaningful without any download.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import PathNotFound

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"


def bundled_model_class() -> type:
    """The transformers class the bundled checkpoint loads with. The bundled model is a LLaVA by construction
    (:mod:`spikemllm.zoo.tiny_vlm`), so this package names that family; the rest of spikemllm asks here."""
    from transformers import LlavaForConditionalGeneration

    return LlavaForConditionalGeneration


def load_bundled(path: str | Path | None = None, attn_implementation: str = "eager") -> tuple[torch.nn.Module, Any]:
    """(model in eval mode, processor) of the bundled tiny VLM (or of a folder saved in the same way)."""
    from transformers import AutoProcessor

    folder = Path(path) if path is not None else BUNDLED_DIR
    if not (folder / "model.safetensors").is_file() or not (folder / "tokenizer.json").is_file():
        raise PathNotFound(
            f"no bundled model in {folder} (model.safetensors and tokenizer.json expected). Reinstall "
            f"spikemllm, or train it with: python scripts/train_tiny_vlm.py"
        )
    processor = AutoProcessor.from_pretrained(folder)
    model = bundled_model_class().from_pretrained(folder, attn_implementation=attn_implementation, dtype=torch.float32)
    model.eval()
    return model, processor


def load_model(name_or_dir: str | Path, attn_implementation: str = "eager") -> tuple[torch.nn.Module, Any]:
    """``"bundled"`` or a local Hugging Face model folder (image-text-to-text models) -> (model, processor)."""
    if str(name_or_dir) == "bundled":
        return load_bundled(attn_implementation=attn_implementation)
    from transformers import AutoModelForImageTextToText, AutoProcessor

    folder = Path(name_or_dir)
    if not (folder / "config.json").is_file():
        raise PathNotFound(f"{folder} is not a model folder (no config.json); pass 'bundled' or a folder "
                           f"written by save_pretrained")
    model = AutoModelForImageTextToText.from_pretrained(folder, attn_implementation=attn_implementation)
    model.eval()
    return model, AutoProcessor.from_pretrained(folder)


__all__ = ["BUNDLED_DIR", "bundled_model_class", "load_bundled", "load_model"]
