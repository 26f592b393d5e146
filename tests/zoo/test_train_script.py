"""The training recipe of the bundled model (scripts/train_tiny_vlm.py): its open LLaVA forward equals the
real one, tag vectors are built as documented, the patch loss prefers the right vector, and a tiny run writes
a model that loads."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from spikemllm.bench import minibench
from spikemllm.bench.prompts import prompt_text
from spikemllm.zoo.tiny_vlm import build_config, build_model, build_processor, train_tokenizer

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_tiny_vlm.py"


@pytest.fixture(scope="module")
def train_script():
    spec = importlib.util.spec_from_file_location("train_tiny_vlm", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny(train_script):
    examples = minibench.build("train", 4, seed=0)
    corpus = [t for ex in examples for t in (prompt_text(ex), " " + train_script.target_answer(ex))]
    processor = build_processor(train_tokenizer(corpus, vocab_size=300))
    torch.manual_seed(0)
    model = build_model(build_config(processor.tokenizer)).eval()
    return train_script, examples, processor, model


def test_open_forward_equals_llava_forward(tiny):
    """Stage 1 feeds tag vectors through ``lm_logits``; with the projected image features in their place it
    must compute exactly what LlavaForConditionalGeneration computes."""
    script, examples, processor, model = tiny
    batch = script.collate(script.encode(processor, examples[:3]), processor.tokenizer.pad_token_id)
    ids, mask, _ = batch
    pixels = processor.image_processor([e.image for e in examples[:3]], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        ours = script.lm_logits(model, ids, mask, script.image_features(model, pixels))
        ref = model(input_ids=ids, attention_mask=mask, pixel_values=pixels).logits
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_tag_vectors_are_token_embeddings_plus_learned_offsets(tiny):
    script, examples, processor, model = tiny
    tags = ["<blank>", "7", "red", "col3", "char:p"]
    table = script.TagTable(tags, processor.tokenizer, model.get_input_embeddings())
    emb = model.get_input_embeddings().weight
    seven = processor.tokenizer("7", add_special_tokens=False)["input_ids"]
    red = processor.tokenizer(" red", add_special_tokens=False)["input_ids"]
    hot = torch.eye(len(tags))
    with torch.no_grad():
        vec = table(hot)
        torch.testing.assert_close(vec[1], emb[seven].sum(0))  # content tags start as their tokens
        torch.testing.assert_close(vec[2], emb[red].sum(0))
        assert vec[3].abs().sum() > 0 and vec[4].abs().sum() > 0  # learned-only tags are not zero
        torch.testing.assert_close(table(hot[1] + hot[2]), vec[1] + vec[2])  # a patch sums its tags


def test_multi_hot_marks_blank_patches(tiny):
    script, examples, _, _ = tiny
    names = ["<blank>"] + sorted({t for ex in examples for cell in ex.meta["patch_tags"] for t in cell})
    hot = script.tag_multi_hot(examples, names)
    assert hot.shape == (len(examples), 36, len(names))
    assert (hot.sum(-1) >= 1).all()  # every patch has at least one tag (blank or content)
    for n, ex in enumerate(examples):
        for p, cell in enumerate(ex.meta["patch_tags"]):
            assert bool(hot[n, p, 0]) == (not cell)


def test_patch_loss_prefers_the_right_vector(tiny):
    script = tiny[0]
    table = torch.randn(5, 16)
    combo = torch.tensor([[1, 2, 0]])
    blank = combo == 0
    right = script.patch_loss(table[combo], combo, table, blank)
    wrong = script.patch_loss(table[combo.flip(-1)], combo, table, blank)
    assert right < wrong
    assert right < 0.1  # on target: only the (small) cross-entropy remains


def test_tiny_training_run_writes_a_loadable_model(tmp_path, monkeypatch, train_script):
    out = tmp_path / "tiny"
    monkeypatch.setattr(sys, "argv", [
        str(SCRIPT), "--n-per-task", "4", "--lm-steps", "2", "--lm-batch-size", "4", "--vision-steps", "2",
        "--vision-batch-size", "4", "--steps", "2", "--batch-size", "4", "--eval-every", "2", "--eval-n", "2",
        "--final-n", "2", "--threads", "1", "--out", str(out),
    ])
    train_script.main()
    from spikemllm.zoo import load_bundled

    model, processor = load_bundled(out)
    assert type(model).__name__ == "LlavaForConditionalGeneration"
    log = (out / "training_log.json").read_text()
    assert '"1_symbolic_lm"' in log and '"3_joint"' in log and '"held_out"' in log
