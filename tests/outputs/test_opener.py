"""The one model opener: each kind opens, and a transformers load that would initialise any weight at random
is an error naming the folder and the weights."""
from __future__ import annotations

import json

import pytest
import torch

import spikemllm
from spikemllm.errors import CheckpointError
from spikemllm.opener import open_model, resolve_model


def test_each_kind_opens_and_is_classified(tmp_path):
    model, _ = spikemllm.tiny_model("qwen2")
    model.save_pretrained(tmp_path / "hf")
    spikemllm.save(spikemllm.convert(spikemllm.tiny_model("qwen2")[0], spikemllm.SpikeConfig(), progress=False),
                   tmp_path / "ck")
    assert [resolve_model(s).kind for s in ("bundled", tmp_path / "hf", tmp_path / "ck")] == \
        ["bundled", "hf", "checkpoint"]
    hf, _ = open_model(tmp_path / "hf")
    assert type(hf).__name__ == "Qwen2ForCausalLM"
    assert all(torch.equal(a, b) for a, b in zip(hf.state_dict().values(), model.state_dict().values()))
    assert open_model(tmp_path / "ck")[0].spike_config == spikemllm.SpikeConfig()
    with pytest.raises(FileNotFoundError, match="is a file, not a folder"):
        resolve_model(tmp_path / "hf" / "config.json")


def test_without_architectures_the_first_clean_auto_class_wins(tmp_path):
    model, _ = spikemllm.tiny_model("bert")  # AutoModelForCausalLM would give a BertLMHeadModel with random heads
    model.save_pretrained(tmp_path / "bert")
    cfg = json.loads((tmp_path / "bert" / "config.json").read_text())
    cfg.pop("architectures", None)
    (tmp_path / "bert" / "config.json").write_text(json.dumps(cfg))
    assert type(open_model(tmp_path / "bert")[0]).__name__ == "BertModel"


def test_weights_that_do_not_fit_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    model, _ = spikemllm.tiny_model("qwen2")
    model.save_pretrained(tmp_path / "hf")
    f = tmp_path / "hf" / "model.safetensors"
    state = load_file(str(f))
    state["model.extra.weight"] = state.pop("model.layers.1.mlp.up_proj.weight")
    save_file(state, str(f), metadata={"format": "pt"})
    with pytest.raises(CheckpointError) as e:
        open_model(tmp_path / "hf")
    msg = str(e.value)
    assert str(tmp_path / "hf") in msg and "\n" not in msg
    assert "1 weights missing from the folder (they would be random), e.g. model.layers.1.mlp.up_proj.weight" in msg
    assert "1 weights in the folder but not in the model, e.g. model.extra.weight" in msg
