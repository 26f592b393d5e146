"""Inputs the reliability probes start from: a tiny LLaVA (the bundled model's recipe, random weights) as a
Hugging Face folder with its processor, the same model converted and saved as a spikemllm checkpoint, a
SpikeConfig file, and helpers that write small benchmark files."""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass
class Inputs:
    root: Path
    hf: Path        # save_pretrained folder + processor
    ckpt: Path      # spikemllm.save of the converted model + processor
    config: Path    # a SpikeConfig JSON file


def tiny_vlm() -> tuple[torch.nn.Module, object]:
    from spikemllm.bench import minibench
    from spikemllm.bench.prompts import prompt_text
    from spikemllm.zoo.tiny_vlm import build_config, build_model, build_processor, train_tokenizer

    torch.manual_seed(0)
    corpus = [prompt_text(e) + " " + e.answers[0] for e in minibench.build("train", 20)]
    processor = build_processor(train_tokenizer(corpus, vocab_size=400))
    model = build_model(build_config(processor.tokenizer, text_hidden=64, text_layers=1, vision_hidden=32,
                                     vision_layers=1))
    return model.eval(), processor


def make_inputs(root: Path) -> Inputs:
    """Write the shared inputs under ``root`` (read-only by convention: probes copy what they change)."""
    import spikemllm

    root.mkdir(parents=True, exist_ok=True)
    model, processor = tiny_vlm()
    hf = root / "hf"
    model.save_pretrained(hf)
    processor.save_pretrained(hf)
    cfg = spikemllm.SpikeConfig(timesteps={"vision": 3, "text": 4})
    config = root / "spike.json"
    cfg.to_json(str(config))
    spikemllm.convert(model, cfg, progress=False)
    ckpt = root / "ckpt"
    spikemllm.save(model, ckpt, tokenizer=processor)
    return Inputs(root, hf, ckpt, config)


def png_bytes(size: tuple[int, int] = (8, 8)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, format="PNG")
    return buf.getvalue()


def ocrbench_release(folder: Path, entries: list, images: dict[str, bytes] | None = None) -> Path:
    """``folder/OCRBench.json`` (the given entries) and ``folder/OCRBench_Images/<name>`` files."""
    img_dir = folder / "OCRBench_Images"
    img_dir.mkdir(parents=True, exist_ok=True)
    for name, data in (images or {"ok.png": png_bytes()}).items():
        (img_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (img_dir / name).write_bytes(data)
    (folder / "OCRBench.json").write_text(json.dumps(entries))
    return folder / "OCRBench.json"


def ocr_entry(i: int = 0, image_path: str = "ok.png", **kw) -> dict:
    return {"dataset_name": "IIIT5K", "id": i, "image_path": image_path, "question": "what is written?",
            "answers": ["HELLO"], "type": "Regular Text Recognition", **kw}


def textvqa_parquet(folder: Path, images: list) -> Path:
    """``folder/data/validation-00000-of-00001.parquet`` with one row per image cell."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = folder / "data" / "validation-00000-of-00001.parquet"
    f.parent.mkdir(parents=True, exist_ok=True)
    n = len(images)
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    pq.write_table(pa.table({"question_id": pa.array(list(range(100, 100 + n))),
                             "question": pa.array(["what brand?"] * n),
                             "answers": pa.array([["nokia"] * 10] * n),
                             "image": pa.array(images, type=image_type)}), f)
    return f
