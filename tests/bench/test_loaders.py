"""Loaders read tiny fixture files written in each dataset's published schema, and explain the expected
layout when pointed at the wrong place."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from spikemllm.bench import loaders
from spikemllm.bench.loaders import LayoutError

IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def _png(colour: tuple[int, int, int], size=(20, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def _image(colour):
    return {"bytes": _png(colour), "path": None}


def _write(path: Path, columns: dict, schema: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: pa.array(v, type=(schema or {}).get(k)) for k, v in columns.items()}
    pq.write_table(pa.table(arrays), path)


def test_textvqa(tmp_path):
    _write(tmp_path / "data" / "validation-00000-of-00001.parquet", {
        "image_id": ["a", "b"], "question_id": [34602, 34603], "question": ["what brand?", "what number?"],
        "answers": [["nokia"] * 10, ["1"] * 9 + ["one"]], "image": [_image((255, 0, 0)), _image((0, 255, 0))],
        "set_name": ["val", "val"],
    }, {"image": IMAGE_TYPE})
    ex = loaders.load("textvqa", tmp_path)
    assert [e.uid for e in ex] == ["34602", "34603"]
    assert ex[0].answers == ["nokia"] * 10 and ex[1].answers[-1] == "one"
    assert ex[0].image.getpixel((0, 0)) == (255, 0, 0) and ex[0].image.size == (20, 10)
    assert len(loaders.load("textvqa", tmp_path, limit=1)) == 1


def test_docvqa_config_folder(tmp_path):
    _write(tmp_path / "DocVQA" / "validation-00000-of-00002.parquet", {
        "questionId": ["q1"], "question": ["What is the date?"], "question_types": [["handwritten"]],
        "image": [_image((1, 2, 3))], "docId": [7], "answers": [["1/2/99", "Jan 2 1999"]],
    }, {"image": IMAGE_TYPE})
    (ex,) = loaders.load("docvqa", tmp_path)
    assert ex.task == "docvqa" and ex.answers == ["1/2/99", "Jan 2 1999"] and ex.category == "handwritten"


@pytest.mark.parametrize("folder", ["data", "ScienceQA-IMG"])
def test_scienceqa_letters_and_image_filter(tmp_path, folder):
    _write(tmp_path / folder / "test-00000-of-00001.parquet", {
        "image": [_image((9, 9, 9)), None], "question": ["Which is a mammal?", "No picture here?"],
        "choices": [["frog", "cat", "eel"], ["x", "y"]], "answer": [1, 0], "hint": ["Look closely.", ""],
        "subject": ["natural science", "language science"],
    }, {"image": IMAGE_TYPE})
    (ex,) = loaders.load("scienceqa", tmp_path)   # the row without an image is skipped
    assert ex.answers == ["B"] and ex.choices == ["frog", "cat", "eel"]
    assert ex.question == "Context: Look closely.\nWhich is a mammal?" and ex.category == "natural science"


def test_mme_groups_two_questions_per_image(tmp_path):
    _write(tmp_path / "data" / "test-00000-of-00004-abc.parquet", {
        "question_id": ["artwork/1.jpg", "artwork/1.jpg", "OCR/2.jpg"],
        "image": [_image((0, 0, 0))] * 3,
        "question": ["Is it by Monet? Please answer yes or no."] * 3, "answer": ["Yes", "No", "Yes"],
        "category": ["artwork", "artwork", "OCR"],
    }, {"image": IMAGE_TYPE})
    ex = loaders.load("mme", tmp_path)
    assert [e.group for e in ex] == ["artwork/artwork/1.jpg"] * 2 + ["OCR/OCR/2.jpg"]
    assert [e.answers[0] for e in ex] == ["Yes", "No", "Yes"]


def test_ocrbench_json_release(tmp_path):
    img_dir = tmp_path / "OCRBench_Images" / "IIIT5K"
    img_dir.mkdir(parents=True)
    Image.new("RGB", (8, 8), (5, 6, 7)).save(img_dir / "1.png")
    (tmp_path / "OCRBench.json").write_text(json.dumps([
        {"dataset_name": "IIIT5K", "id": 0, "image_path": "IIIT5K/1.png", "question": "what is written?",
         "answers": "HELLO", "type": "Regular Text Recognition"},
        {"dataset_name": "HME100k", "id": 1, "image_path": "IIIT5K/1.png", "question": "latex?",
         "answers": ["x^2", "x^{2}"], "type": "Handwritten Mathematical Expression Recognition"},
    ]))
    ex = loaders.load("ocrbench", tmp_path)
    assert ex[0].answers == ["HELLO"] and ex[0].category == "Regular Text Recognition"
    assert ex[1].answers == ["x^2", "x^{2}"] and ex[1].image.getpixel((0, 0)) == (5, 6, 7)


def test_ocrbench_parquet(tmp_path):
    _write(tmp_path / "data" / "test-00000-of-00001.parquet", {
        "dataset": ["IIIT5K"], "question": ["what is written?"], "question_type": ["Regular Text Recognition"],
        "answer": [["STOP"]], "image": [_image((0, 0, 1))],
    }, {"image": IMAGE_TYPE})
    (ex,) = loaders.load("ocrbench", tmp_path)
    assert ex.answers == ["STOP"] and ex.meta["dataset_name"] == "IIIT5K"


def test_missing_folder_shows_expected_layout(tmp_path):
    with pytest.raises(LayoutError) as err:
        loaders.load("textvqa", tmp_path / "nowhere")
    assert "validation-00000-of-0000N.parquet" in str(err.value) and "does not exist" in str(err.value)


def test_wrong_columns_show_expected_layout(tmp_path):
    _write(tmp_path / "data" / "test-00000-of-00001.parquet", {"question": ["q"], "label": [1]})
    with pytest.raises(LayoutError) as err:
        loaders.load("mme", tmp_path)
    message = str(err.value)
    assert "missing column(s)" in message and "question_id" in message and "category" in message


def test_empty_folder_names_the_split(tmp_path):
    with pytest.raises(LayoutError, match="no 'validation-\\*.parquet' shard"):
        loaders.load("docvqa", tmp_path)


def test_unknown_dataset():
    with pytest.raises(KeyError, match="known"):
        loaders.load("vizwiz", ".")
