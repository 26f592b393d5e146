"""A model no adapter knows converts once its layout is declared (JSON/YAML file, dict or ModelMap), with the
same contract as a shipped family; a layout field that names no module is refused by name."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

import spikemllm
from spikemllm.errors import ConfigError, UnsupportedModel
from spikemllm.models import ModelMap, declare_layout, describe, load_layout, register_layout
from spikemllm.models.base import _BY_CLASS, _REGISTRY
from spikemllm.nn.spike_linear import SpikeLinear, set_mode

IMAGE_ID, VOCAB, HIDDEN, V_HIDDEN, PATCH = 5, 64, 32, 16, 48


class ToyConfig:
    """What a trust_remote_code config looks like to us: an object with a model_type no adapter serves."""

    model_type = "toy_minicpmv"
    image_token_id = IMAGE_ID


class VisionBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(V_HIDDEN, 2 * V_HIDDEN), nn.Linear(2 * V_HIDDEN, V_HIDDEN)

    def forward(self, x):
        return x + self.fc2(F.gelu(self.fc1(x)))


class Vpm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Linear(PATCH, V_HIDDEN)
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList(VisionBlock() for _ in range(2))

    def forward(self, pixels):
        x = self.patch(pixels)
        for b in self.encoder.layers:
            x = b(x)
        return x


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(HIDDEN, HIDDEN) for _ in range(4))
        self.up, self.down = nn.Linear(HIDDEN, 2 * HIDDEN), nn.Linear(2 * HIDDEN, HIDDEN)

    def forward(self, x):
        b, s, _ = x.shape
        q, k, v = (m(x).view(b, s, 2, HIDDEN // 2).transpose(1, 2) for m in (self.q, self.k, self.v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, s, HIDDEN)
        x = x + self.o(a)
        return x + self.down(F.silu(self.up(x)))


class ToyVLM(nn.Module):
    """A custom-code-style VLM (MiniCPM-V-like names: vpm, resampler, llm) whose class and model_type no
    spikemllm adapter knows. Image tokens in the prompt are replaced by projected patch features."""

    def __init__(self) -> None:
        super().__init__()
        self.config = ToyConfig()
        self.vpm = Vpm()
        self.resampler = nn.Sequential(nn.Linear(V_HIDDEN, HIDDEN), nn.GELU(), nn.Linear(HIDDEN, HIDDEN))
        self.llm = nn.Module()
        self.llm.embed = nn.Embedding(VOCAB, HIDDEN)
        self.llm.layers = nn.ModuleList(Block() for _ in range(2))
        self.lm_head = nn.Linear(HIDDEN, VOCAB, bias=False)

    def forward(self, input_ids, pixel_values=None, attention_mask=None):
        x = self.llm.embed(input_ids)
        if pixel_values is not None:
            feats = self.resampler(self.vpm(pixel_values))
            x = x.masked_scatter((input_ids == IMAGE_ID)[..., None], feats.reshape(-1, HIDDEN))
        for b in self.llm.layers:
            x = b(x)
        return SimpleNamespace(logits=self.lm_head(x))


LAYOUT = {"family": "toy", "vision": "vpm", "vision_layers": "vpm.encoder.layers", "projector": "resampler",
          "lm": "llm", "lm_layers": "llm.layers", "lm_head": "lm_head", "image_token_id": IMAGE_ID}


def _toy(seed: int = 0):
    torch.manual_seed(seed)
    model = ToyVLM().eval()
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(10, VOCAB, (2, 10), generator=g)
    ids[:, 2:6] = IMAGE_ID  # 4 image tokens per row
    return model, {"input_ids": ids, "pixel_values": torch.randn(2, 4, PATCH, generator=g)}


CFG = spikemllm.SpikeConfig(coder="tc-lif", timesteps={"vision": 2, "text": 4}, weight_bits=4)


def test_without_a_layout_the_model_is_refused_with_what_to_do():
    model, _ = _toy()
    with pytest.raises(UnsupportedModel, match=r"toy_minicpmv.*--layout FILE"):
        describe(model)


@pytest.mark.parametrize("fmt", ["json", "yaml", "dict"])
def test_declared_layout_converts_with_the_contract(tmp_path, fmt):
    model, inputs = _toy()
    with torch.no_grad():
        fp = model(**inputs).logits
    src = LAYOUT
    if fmt != "dict":
        src = tmp_path / f"layout.{fmt}"
        src.write_text(json.dumps(LAYOUT) if fmt == "json" else yaml.safe_dump(LAYOUT))
    mm = declare_layout(model, src)
    assert (mm.region_of("vpm.encoder.layers.1.fc2"), mm.region_of("resampler.2"), mm.region_of("llm.layers.0.q"),
            mm.region_of("lm_head")) == ("vision", "projector", "lm", None)
    spikemllm.convert(model, CFG, progress=False)
    spiking = {n: m for n, m in model.named_modules() if isinstance(m, SpikeLinear)}
    assert len(spiking) == 1 + 2 * 2 + 2 + 2 * 6 and "lm_head" not in spiking  # patch, blocks, resampler, LM
    assert {spiking[n].region for n in ("vpm.patch", "resampler.0", "resampler.2")} == {"vision"}  # vision tokens only
    assert spiking["llm.layers.1.down"].region == "lm"
    with torch.no_grad(), spikemllm.collect_stats(model) as stats:
        fused = model(**inputs).logits
    set_mode(model, "faithful")
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, fused)  # the spiking contract, on a model we never saw
    # image tokens run at Tv inside the language model, the rest at Tt
    q = stats.layers["llm.layers.0.q"].per_modality
    assert (q["vision"].tokens, q["text"].tokens) == (8, 12)
    assert (q["vision"].mean_timesteps, q["text"].mean_timesteps) == (2, 4)
    assert torch.nn.functional.cosine_similarity(fused.flatten(), fp.flatten(), dim=0) > 0.9


def test_a_model_map_in_python_and_a_mask_input_rule():
    model, inputs = _toy()
    mm = ModelMap(family="toy", model=model, lm="llm", lm_layers="llm.layers", vision="vpm",
                  vision_layers="vpm.encoder.layers", projector="resampler", lm_head="lm_head",
                  vision_mask_fn=lambda kw: kw["input_ids"] == IMAGE_ID)
    declare_layout(model, mm)
    assert describe(model).vision_mask(inputs).sum() == 8
    lay = load_layout({**{k: v for k, v in LAYOUT.items() if k != "image_token_id"}, "vision_mask_input": "types"})
    assert torch.equal(lay.model_map(model).vision_mask({"types": torch.tensor([[0, 1, 2, 0]])}),
                       torch.tensor([[False, True, True, False]]))
    from_cfg = load_layout({**{k: v for k, v in LAYOUT.items() if k != "image_token_id"},
                            "image_token_id_from_config": "image_token_id"})
    assert from_cfg.model_map(model).image_token_ids == (IMAGE_ID,)


@pytest.mark.parametrize("field,value,message", [
    ("projector", "mlp1", r"'projector' names 'mlp1', which is not a module of ToyVLM.*top-level modules are: "
                          r"llm, lm_head, resampler, vpm"),
    ("vision_layers", "vpm.encoder.layer", r"'vision_layers' names 'vpm.encoder.layer'.*closest: vpm.encoder.layers"),
    ("lm_layers", "llm.embed", r"'lm_layers' names 'llm.embed', a Embedding; it must name the list of blocks"),
    ("lm_head", "llm.head", r"'lm_head' names 'llm.head'"),
    ("lm_layers", "vpm.encoder.layers", r"'lm_layers' \('vpm.encoder.layers'\) is not inside its part 'llm'"),
])
def test_a_field_that_names_no_module_is_refused_by_name(field, value, message):
    model, _ = _toy()
    with pytest.raises(ConfigError, match=message):
        declare_layout(model, {**LAYOUT, field: value})
    with pytest.raises(UnsupportedModel):
        describe(model)  # nothing was attached


def test_layout_file_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match=r"'vison' \(did you mean 'vision'\?\)"):
        load_layout({"lm": "llm", "vison": "vpm"})
    with pytest.raises(ConfigError, match="needs an image-token rule"):
        load_layout({"lm": "llm", "vision": "vpm"})
    with pytest.raises(ConfigError, match="gives 2 image-token rules"):
        load_layout({"lm": "llm", "image_token_id": 1, "vision_mask_input": "x"})
    bad = tmp_path / "l.json"
    bad.write_text("{lm: llm")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_layout(bad)
    with pytest.raises(ConfigError, match="no such file"):
        load_layout(tmp_path / "missing.yaml")


def test_register_layout_serves_every_model_of_a_class_and_refuses_a_second():
    lay = load_layout({**LAYOUT, "class_names": ["ToyVLM"]})
    try:
        register_layout(lay)
        model, _ = _toy(1)
        assert describe(model).family == "toy"
        with pytest.raises(ValueError, match="already has an adapter"):
            register_layout(lay)
        with pytest.raises(ValueError, match="model_type 'qwen2_vl' already has an adapter"):
            register_layout({**LAYOUT, "model_types": ["qwen2_vl"]})
        assert "qwen2_vl" in _REGISTRY and _REGISTRY["qwen2_vl"].family == "qwen2-vl"
    finally:
        _BY_CLASS.pop("ToyVLM", None)


def test_convert_cli_takes_a_layout(tmp_path):
    """--layout on a model an adapter knows: the declared layout is what gets converted (here: LM only)."""
    from spikemllm.cli.main import main

    model, inputs = spikemllm.tiny_model("qwen2")
    model.save_pretrained(tmp_path / "hf")
    (tmp_path / "layout.json").write_text(json.dumps({"lm": "model", "lm_layers": "model.layers"}))
    assert main(["convert", "--model", str(tmp_path / "hf"), "--layout", str(tmp_path / "layout.json"),
                 "--out", str(tmp_path / "out")]) == 0
    (tmp_path / "bad.json").write_text(json.dumps({"lm": "model", "lm_layers": "model.blocks"}))
    assert main(["convert", "--model", str(tmp_path / "hf"), "--layout", str(tmp_path / "bad.json"),
                 "--out", str(tmp_path / "out2")]) == 2
    assert not (tmp_path / "out2").exists()


def test_a_checkpoint_converted_with_a_layout_loads_with_it(tmp_path):
    """save() keeps the declared layout beside the weights: load() converts the same modules, outputs identical.
    (LM only, on a model whose adapter would also convert the vision tower: without the saved layout, load()
    would build other modules than were saved.)"""
    model, inputs = spikemllm.tiny_model("qwen2_vl")
    declare_layout(model, LM_ONLY)
    spikemllm.convert(model, CFG, progress=False)
    with torch.no_grad():
        want = model(**inputs).logits
    spikemllm.save(model, tmp_path / "ckpt")
    assert json.loads((tmp_path / "ckpt" / "layout.json").read_text())["lm"] == LM_ONLY["lm"]
    back = spikemllm.load(tmp_path / "ckpt")
    names = sorted(n for n, m in back.named_modules() if isinstance(m, SpikeLinear))
    assert names == sorted(n for n, m in model.named_modules() if isinstance(m, SpikeLinear))
    assert not any("visual" in n for n in names)
    with torch.no_grad():
        assert torch.equal(back(**inputs).logits, want)


LM_ONLY = {"lm": "model.language_model", "lm_layers": "model.language_model.layers",
           "image_token_id_from_config": "image_token_id"}


def test_a_layout_of_a_known_model_is_kept_too(tmp_path):
    """--layout on a model an adapter knows (LM only): reloading must not fall back to the adapter's full map."""
    from spikemllm.cli.main import main

    model, _ = spikemllm.tiny_model("qwen2_vl")
    model.save_pretrained(tmp_path / "hf")
    (tmp_path / "layout.json").write_text(json.dumps(LM_ONLY))
    assert main(["convert", "--model", str(tmp_path / "hf"), "--layout", str(tmp_path / "layout.json"),
                 "--out", str(tmp_path / "out")]) == 0
    back = spikemllm.load(tmp_path / "out")
    spiking = [n for n, m in back.named_modules() if isinstance(m, SpikeLinear)]
    assert spiking and not any("visual" in n for n in spiking)


def test_a_layout_with_a_python_rule_is_not_saved_and_says_how_to_load(tmp_path, caplog):
    import logging

    from spikemllm.io import _save_layout
    from spikemllm.models.layout import LAYOUT_ATTR, Layout

    model = torch.nn.Linear(2, 2)
    object.__setattr__(model, LAYOUT_ATTR, Layout(lm="", vision_mask_fn=lambda kw: None))
    with caplog.at_level(logging.WARNING):
        _save_layout(model, tmp_path / "layout.json")
    assert not (tmp_path / "layout.json").exists()
    assert "spikemllm.load(path, layout=...)" in caplog.text
