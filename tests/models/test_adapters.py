"""Family adapters: where the vision tower, projector and LM live, the decoder blocks, the image token ids, and
the refusal of unsupported models with the list of supported families."""
from __future__ import annotations

import pytest
import torch

import spikemllm
from spikemllm.models import Adapter, ModelMap, describe, register_adapter, supported_model_types
from spikemllm.models.tiny import BUILDERS, IMAGE_ID, VIDEO_ID, VLM_FAMILIES

# family: (adapter family, a module in each region, LM layers, vision layers)
EXPECTED = {
    "qwen2_vl": ("qwen2-vl", "model.visual.blocks.0.attn.qkv", "model.visual.merger.mlp.0", 2, 2),
    "qwen2_5_vl": ("qwen2-vl", "model.visual.blocks.1.mlp.up_proj", "model.visual.merger.mlp.2", 2, 2),
    "llava": ("llava", "model.vision_tower.encoder.layers.0.self_attn.q_proj",
              "model.multi_modal_projector.linear_1", 2, 2),
    "internvl": ("internvl", "model.vision_tower.encoder.layer.1.attention.q_proj",
                 "model.multi_modal_projector.linear_2", 2, 2),
    "idefics3": ("idefics3", "model.vision_model.encoder.layers.0.mlp.fc1",
                 "model.connector.modality_projection.proj", 2, 2),
}


@pytest.mark.parametrize("family", VLM_FAMILIES)
def test_describe_vlm(family):
    model, inputs = spikemllm.tiny_model(family)
    fam, vis_mod, proj_mod, n_lm, n_vis = EXPECTED[family]
    mm = describe(model)
    assert mm.family == fam
    names = dict(model.named_modules())
    assert vis_mod in names and proj_mod in names
    assert mm.region_of(vis_mod) == "vision"
    assert mm.region_of(proj_mod) == "projector"
    lm_q = f"{mm.lm_layers}.1.self_attn.q_proj"
    assert lm_q in names and mm.region_of(lm_q) == "lm"
    assert mm.region_of("lm_head") is None
    assert mm.num_layers("lm") == n_lm and mm.num_layers("vision") == n_vis
    assert mm.layer_of(lm_q) == ("lm", 1)
    assert mm.layer_of(vis_mod)[0] == "vision"
    assert IMAGE_ID in mm.image_token_ids
    mask = mm.vision_mask(inputs)
    assert torch.equal(mask, inputs["input_ids"] == IMAGE_ID) and 0 < int(mask.sum()) < mask.numel()


def test_qwen_mask_follows_mm_token_type_ids_including_video():
    model, inputs = spikemllm.tiny_model("qwen2_vl")
    mm = describe(model)
    assert VIDEO_ID in mm.image_token_ids
    tt = torch.zeros_like(inputs["input_ids"])
    tt[:, 1] = 2  # a video token, whatever its id says
    assert torch.equal(mm.vision_mask({**inputs, "mm_token_type_ids": tt}), tt > 0)
    ids = inputs["input_ids"].clone()
    ids[0, 0] = VIDEO_ID
    no_types = mm.vision_mask({"input_ids": ids})
    assert bool(no_types[0, 0]) and torch.equal(no_types[:, 1:], ids[:, 1:] == IMAGE_ID)


@pytest.mark.parametrize("family,layers", [("qwen2", "model.layers"), ("bert", "encoder.layer")])
def test_generic_path_is_all_text(family, layers):
    model, inputs = spikemllm.tiny_model(family)
    mm = describe(model)
    assert mm.family == "generic" and mm.lm_layers == layers and mm.vision is None
    assert mm.vision_mask(inputs) is None
    assert mm.num_layers("vision") == 0


def _gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel
    return GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64, n_positions=32))


def _t5():
    from transformers import T5Config, T5ForConditionalGeneration
    return T5ForConditionalGeneration(T5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=2))


@pytest.mark.parametrize("build,mt", [(_gpt2, "gpt2"), (_t5, "t5")])
def test_unsupported_model_lists_supported_families(build, mt):
    model = build()
    for call in (lambda: describe(model), lambda: spikemllm.convert(model, spikemllm.SpikeConfig(), progress=False)):
        with pytest.raises(ValueError) as e:
            call()
        msg = str(e.value)
        assert "\n" not in msg and f"model_type={mt!r}" in msg
        for family in ("qwen2_vl", "qwen2_5_vl", "llava", "internvl", "idefics3", "qwen2", "bert"):
            assert family in msg
    assert getattr(model, "spike_config", None) is None


def test_supported_types_and_duplicate_registration_refused():
    types = supported_model_types()
    for t in ("qwen2_vl", "qwen2_5_vl", "llava", "internvl", "idefics3", "smolvlm", "llama", "qwen2", "bert"):
        assert t in types

    class Again(Adapter):
        family = "again"
        model_types = ("llava",)

        def describe(self, model):  # pragma: no cover
            return ModelMap(family="again", model=model, lm="", lm_layers="")

    with pytest.raises(ValueError, match="already has an adapter"):
        register_adapter(Again())


def test_tiny_model_builders():
    assert set(VLM_FAMILIES) <= set(BUILDERS)
    with pytest.raises(ValueError, match="allowed values: .*qwen2_vl"):
        spikemllm.tiny_model("gpt2")
    a, ia = spikemllm.tiny_model("llava", seed=1)
    b, ib = spikemllm.tiny_model("llava", seed=1)
    assert torch.equal(ia["input_ids"], ib["input_ids"])
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
