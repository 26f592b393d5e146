"""The harness prompts, generates, slices off the prompt, scores and aggregates correctly."""
from __future__ import annotations

import json

import pytest
import torch

from spikemllm.bench import evaluate, format_table, minibench, run_benchmark, save_json
from spikemllm.bench.harness import default_prompt, make_batches, score_records, summarize
from spikemllm.zoo.tiny_vlm import IMAGE_TOKENS, PATCH_SIZE


class FixedAnswerModel(torch.nn.Module):
    """Stands in for any model with ``generate``: always answers ``answer``."""

    def __init__(self, tokenizer, answer: str) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.answer_ids = tokenizer(" " + answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        self.seen_inputs: list[dict] = []

    def generate(self, input_ids, max_new_tokens=16, **kwargs):
        self.seen_inputs.append({"input_ids": input_ids, **kwargs})
        tail = torch.tensor(self.answer_ids[:max_new_tokens]).expand(input_ids.shape[0], -1)
        return torch.cat([input_ids, tail], dim=1)


def test_gold_predictions_score_full_marks():
    ex = minibench.build("test", 8)  # MME: 4 image pairs, one per subtask
    gold = [e.meta.get("word", e.answers[0]) for e in ex]
    summary = summarize(score_records(ex, gold))
    assert summary["average"] == pytest.approx(100.0)
    assert summary["tasks"]["ocrbench"]["score"] == pytest.approx(1000.0)
    assert summary["tasks"]["mme"]["score"] == pytest.approx(800.0)  # 4 subtasks x (100 + 100)


def test_constant_yes_on_mme_pairs(tiny_vlm):
    """Always "Yes": half the questions right, no image with both right -> 50 per subtask."""
    _, processor = tiny_vlm
    model = FixedAnswerModel(processor.tokenizer, "Yes")
    result = evaluate(model, processor, minibench.build("test", 8, tasks=["mme"]), batch_size=3, progress=False)
    mme = result["tasks"]["mme"]
    assert all(r["prediction"] == "Yes" for r in result["records"])
    assert mme["score"] == pytest.approx(4 * 50.0) and mme["perception"] == pytest.approx(200.0)
    # The image reached the model with the image tokens the processor expanded.
    first = model.seen_inputs[0]
    assert first["pixel_values"].shape == (3, 3, 96, 96)
    n_image = int((first["input_ids"][0] == processor.tokenizer.convert_tokens_to_ids("<image>")).sum())
    assert n_image == IMAGE_TOKENS == (96 // PATCH_SIZE) ** 2


def test_left_padding_and_prompt_template(tiny_vlm):
    _, processor = tiny_vlm
    ex = minibench.build("test", 2, tasks=["scienceqa"])
    prompt = default_prompt(processor, ex[0])
    assert prompt.startswith("<image>") and prompt.endswith("\nAnswer:") and "A. " in prompt
    model = FixedAnswerModel(processor.tokenizer, ex[0].answers[0])
    evaluate(model, processor, ex, batch_size=2, progress=False)
    mask = model.seen_inputs[0]["attention_mask"]
    assert bool((mask[:, -1] == 1).all())  # left padded: every row's last column is real


def test_tokenizer_only_models_get_text_prompts(tiny_vlm):
    _, processor = tiny_vlm
    model = FixedAnswerModel(processor.tokenizer, "B")
    result = evaluate(model, processor.tokenizer, minibench.build("test", 4, tasks=["scienceqa"]), progress=False)
    assert "pixel_values" not in model.seen_inputs[0]
    assert result["tasks"]["scienceqa"]["n"] == 4


def test_batches_never_mix_tasks():
    ex = minibench.build("test", 5, tasks=["textvqa", "docvqa"])
    batches = make_batches(ex, 4)
    assert [len(b) for b in batches] == [4, 1, 4, 1]
    assert all(len({e.task for e in b}) == 1 for b in batches)


def test_real_model_end_to_end_is_deterministic(tiny_vlm, tmp_path):
    model, processor = tiny_vlm
    torch.set_num_threads(1)
    a = run_benchmark(model, processor, limit=2, batch_size=4, max_new_tokens=4, progress=False,
                      json_path=tmp_path / "r.json")
    b = run_benchmark(model, processor, limit=2, batch_size=4, max_new_tokens=4, progress=False)
    assert [r["prediction"] for r in a["records"]] == [r["prediction"] for r in b["records"]]
    assert set(a["tasks"]) == {"textvqa", "docvqa", "ocrbench", "scienceqa", "mme"}
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["tasks"] == json.loads(json.dumps(a["tasks"])) and saved["meta"]["source"] == "minibench"


def test_format_table_rows_and_scales():
    ex = minibench.build("test", 8)
    full = summarize(score_records(ex, [e.meta.get("word", e.answers[0]) for e in ex]))
    none = summarize(score_records(ex, ["zzz"] * len(ex)))
    table = format_table({"FP32": full, "broken": none})
    lines = table.splitlines()
    assert lines[0].split() == ["setting", "textvqa", "docvqa", "ocrbench", "scienceqa", "mme", "avg", "%"]
    assert lines[2].split() == ["FP32", "100.00", "100.00", "1000", "100.00", "800", "100.00"]
    assert lines[3].split()[0] == "broken" and lines[3].split()[-1] == "0.00"


def test_save_json_is_atomic(tmp_path):
    path = save_json({"a": 1}, tmp_path / "sub" / "x.json")
    assert json.loads(path.read_text()) == {"a": 1} and not list(tmp_path.rglob("*.tmp"))
