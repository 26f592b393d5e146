"""Shared fixtures: a tiny randomly initialised LLaVA built from the bundled model's recipe."""
from __future__ import annotations

import pytest
import torch

from spikemllm.bench import minibench
from spikemllm.bench.prompts import prompt_text
from spikemllm.zoo.tiny_vlm import build_config, build_model, build_processor, train_tokenizer


@pytest.fixture(scope="session")
def tiny_vlm():
    """(model, processor): same architecture and processor as the bundled model, random weights."""
    torch.manual_seed(0)
    corpus = [prompt_text(e) + " " + e.answers[0] for e in minibench.build("train", 20)]
    processor = build_processor(train_tokenizer(corpus, vocab_size=400))
    model = build_model(build_config(processor.tokenizer, text_hidden=64, text_layers=1, vision_hidden=32,
                                     vision_layers=1))
    return model.eval(), processor
