"""Calibration from benchmark items, on a random model of the bundled architecture (built here, no download):
MED counts every image token and the CLI takes ``--calib minibench`` from a saved model folder."""
from __future__ import annotations

import json

import pytest
import torch

from spikemllm.bench import minibench
from spikemllm.cli.main import main
from spikemllm.msts import med, plan
from spikemllm.models import describe
from spikemllm.msts.calib import calibration_from_examples, minibench_calibration
from spikemllm.msts.sensitivity import scored_positions
from spikemllm.zoo.tiny_vlm import IMAGE_TOKENS


def test_minibench_calibration_covers_every_task_and_counts_image_tokens(random_bundled):
    model, proc = random_bundled
    calib = minibench_calibration(proc, n=5, batch_size=3)
    assert [b["input_ids"].shape[0] for b in calib] == [3, 2]
    r = med(model, calib, sensitivity=False)
    assert r.tokens["lm.0"]["vision"] == 5 * IMAGE_TOKENS
    assert r.tokens["lm.0"]["text"] > 5 * 4  # prompt and answer text
    assert r.cosine["lm.1"]["vision"] is not None and r.cosine["lm.1"]["text"] is not None
    assert plan(r, 3.5, "med").cost <= 3.5


def test_answers_are_appended_for_teacher_forcing(random_bundled):
    _, proc = random_bundled
    ex = minibench.build("train", n_per_task=1, seed=0, tasks=["mme"])[0]
    with_a = calibration_from_examples(proc, [ex], with_answers=True)[0]["input_ids"]
    without = calibration_from_examples(proc, [ex], with_answers=False)[0]["input_ids"]
    assert with_a.shape[1] > without.shape[1]
    assert proc.tokenizer.decode(with_a[0]).endswith(ex.answers[0] + proc.tokenizer.eos_token)
    # labels mark exactly the answer and EOS; those are the positions the KL is taken at
    batch = calibration_from_examples(proc, [ex], with_answers=True)[0]
    answer = proc.tokenizer(" " + ex.answers[0] + proc.tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    assert batch["labels"][0][batch["labels"][0] != -100].tolist() == answer
    logits = torch.zeros(*batch["input_ids"].shape, 3)
    keep = scored_positions(describe(random_bundled[0]), batch, logits)
    assert int(keep.sum()) == len(answer) and bool(keep[0, -len(answer) - 1])
    with pytest.raises(ValueError, match="no examples"):
        calibration_from_examples(proc, [])


def test_cli_with_minibench_calibration(random_bundled, tmp_path):
    model, proc = random_bundled
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    proc.save_pretrained(folder)
    out = tmp_path / "out"
    assert main(["med", "--model", str(folder), "--calib", "minibench:4", "--budget", "3", "--strategy", "search",
                 "--levels", "2,3,4", "--out", str(out)]) == 0
    alloc = json.loads((out / "allocation.json").read_text())
    assert alloc["cost"] <= 3 + 1e-9
    assert set(alloc["timesteps"]) == {"vision.0", "vision.1", "rest", "lm.0", "lm.1"}
