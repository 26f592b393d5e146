"""Tiny randomly initialised models of every supported family, with a matching image+text input.

For tests, docs and benchmarks: nothing is downloaded. ``tiny_model("qwen2_vl")`` returns ``(model, inputs)``
where ``inputs`` is a dict for ``model(**inputs)`` holding a few image tokens and a few text tokens.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn
from ..errors import ConfigError

VOCAB = 96
IMAGE_ID = 90
VIDEO_ID = 91


def _llama_text(**kw: Any) -> dict[str, Any]:
    d = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=False,
             bos_token_id=1, eos_token_id=2, pad_token_id=0)
    d.update(kw)
    return d


def _text_ids(n_img: int, seed: int, n_text: int = 6, batch: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    pre = torch.randint(1, 80, (batch, 2), generator=g)
    post = torch.randint(1, 80, (batch, n_text - 2), generator=g)
    img = torch.full((batch, n_img), IMAGE_ID)
    return torch.cat([pre, img, post], dim=1)


def _qwen2_vl(seed: int, v25: bool = False) -> tuple[nn.Module, dict[str, Any]]:
    if v25:
        from transformers import Qwen2_5_VLConfig as Cfg, Qwen2_5_VLForConditionalGeneration as Cls
        vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64, patch_size=4,
                      spatial_merge_size=2, temporal_patch_size=2, window_size=16, fullatt_block_indexes=[1])
    else:
        from transformers import Qwen2VLConfig as Cfg, Qwen2VLForConditionalGeneration as Cls
        vision = dict(depth=2, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2, patch_size=4,
                      spatial_merge_size=2, temporal_patch_size=2)
    text = _llama_text(rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0})
    cfg = Cfg(text_config=text, vision_config=vision, image_token_id=IMAGE_ID, video_token_id=VIDEO_ID,
              vision_start_token_id=92, vision_end_token_id=93)
    torch.manual_seed(seed)
    model = Cls._from_config(cfg, attn_implementation="eager").eval()
    grid = torch.tensor([[1, 4, 4], [1, 4, 4]])  # per image: t, h, w patches
    n_img = int(grid[0].prod()) // 4
    g = torch.Generator().manual_seed(seed + 1)
    pix = torch.randn(int(grid.prod(dim=1).sum()), 3 * 2 * 4 * 4, generator=g)
    ids = _text_ids(n_img, seed)
    return model, {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": pix,
                   "image_grid_thw": grid, "mm_token_type_ids": (ids == IMAGE_ID).long()}


def _image_vlm(model_cls: Any, cfg: Any, seed: int, n_img: int, pixel_shape: tuple[int, ...]
               ) -> tuple[nn.Module, dict[str, Any]]:
    """A tiny VLM whose image arrives as ``pixel_values`` of ``pixel_shape``, with ``n_img`` image tokens."""
    torch.manual_seed(seed)
    model = model_cls._from_config(cfg, attn_implementation="eager").eval()
    g = torch.Generator().manual_seed(seed + 1)
    ids = _text_ids(n_img, seed)
    return model, {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                   "pixel_values": torch.randn(*pixel_shape, generator=g)}


def _llava(seed: int) -> tuple[nn.Module, dict[str, Any]]:
    from transformers import LlavaConfig, LlavaForConditionalGeneration
    vision = dict(model_type="clip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=2, image_size=16, patch_size=4, projection_dim=32)
    cfg = LlavaConfig(vision_config=vision, text_config=dict(model_type="llama", **_llama_text()),
                      image_token_id=IMAGE_ID, vision_feature_layer=-1)
    return _image_vlm(LlavaForConditionalGeneration, cfg, seed, 16, (2, 3, 16, 16))


def _internvl(seed: int) -> tuple[nn.Module, dict[str, Any]]:
    from transformers import InternVLConfig, InternVLForConditionalGeneration
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  image_size=[16, 16], patch_size=[4, 4])
    text = dict(model_type="qwen2", **_llama_text())
    cfg = InternVLConfig(vision_config=vision, text_config=text, image_token_id=IMAGE_ID, downsample_ratio=0.5,
                         vision_feature_layer=-1)
    return _image_vlm(InternVLForConditionalGeneration, cfg, seed, 4, (2, 3, 16, 16))


def _idefics3(seed: int) -> tuple[nn.Module, dict[str, Any]]:
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=16,
                  patch_size=4)
    cfg = Idefics3Config(vision_config=vision, text_config=dict(model_type="llama", **_llama_text()),
                         image_token_id=IMAGE_ID, scale_factor=2)
    return _image_vlm(Idefics3ForConditionalGeneration, cfg, seed, 4, (2, 1, 3, 16, 16))


def _qwen2(seed: int) -> tuple[nn.Module, dict[str, Any]]:
    from transformers import Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM._from_config(Qwen2Config(**_llama_text()), attn_implementation="eager").eval()
    ids = torch.randint(1, 80, (2, 12), generator=torch.Generator().manual_seed(seed + 1))
    return model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _bert(seed: int) -> tuple[nn.Module, dict[str, Any]]:
    from transformers import BertConfig, BertModel
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=128, max_position_embeddings=64)
    model = BertModel._from_config(cfg, attn_implementation="eager").eval()
    ids = torch.randint(1, 80, (2, 12), generator=torch.Generator().manual_seed(seed + 1))
    return model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


BUILDERS: dict[str, Callable[[int], tuple[nn.Module, dict[str, Any]]]] = {
    "qwen2_vl": _qwen2_vl,
    "qwen2_5_vl": lambda s: _qwen2_vl(s, v25=True),
    "llava": _llava,
    "internvl": _internvl,
    "idefics3": _idefics3,
    "qwen2": _qwen2,
    "bert": _bert,
}
VLM_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "llava", "internvl", "idefics3")


def tiny_model(family: str, seed: int = 0) -> tuple[nn.Module, dict[str, Any]]:
    """A tiny random model of ``family`` (one of :data:`BUILDERS`) in eval mode, and an input for it."""
    if family not in BUILDERS:
        raise ConfigError(f"family={family!r} has no tiny builder; allowed values: {', '.join(BUILDERS)}")
    return BUILDERS[family](seed)
