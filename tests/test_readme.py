"""The README's examples run as written (docs that drift from the code fail here): the Python quick start (twice:
it must rerun), the shell block of "Your own checkpoint" on a small model folder and a small TextVQA file, and the
layout example parses as a layout. GPU commands are not run."""
from __future__ import annotations

import fnmatch
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
ROOT = README.parent


def _blocks_after(marker: str, lang: str) -> list[str]:
    return re.findall(rf"<!-- {marker} -->\n```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_quick_start_runs_and_reruns(tmp_path, monkeypatch):
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README lost its Python quick start"
    monkeypatch.chdir(tmp_path)
    for _ in range(2):  # a second run must not fail on the folder the first one wrote
        scope: dict = {}
        exec(compile(blocks[0], "README.md", "exec"), scope)  # noqa: S102  (our own documentation)
    assert (tmp_path / "out" / "qwen2vl-spiking" / "model.safetensors").is_file()


def test_readme_starts_with_the_two_commands():
    head = README.read_text().split("---")[0]
    cmds = re.findall(r"^bash (scripts/\S+)", head, flags=re.M)
    assert cmds == ["scripts/demo.sh", "scripts/test.sh"]
    for c in cmds:
        assert (README.parent / c).is_file()


def _textvqa(root: Path, n: int = 3) -> None:
    """A TextVQA validation shard in lmms-lab/textvqa's layout (what the README's fetch command downloads)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    def png(i: int) -> dict:
        buf = io.BytesIO()
        Image.new("RGB", (64, 64), (40 * i, 120, 200)).save(buf, format="PNG")
        return {"bytes": buf.getvalue(), "path": None}

    path = root / "textvqa" / "data" / "validation-00000-of-00001.parquet"
    path.parent.mkdir(parents=True)
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    pq.write_table(pa.table({
        "question_id": pa.array(list(range(n))),
        "question": pa.array([f"what is written on sign {i}?" for i in range(n)]),
        "answers": pa.array([["stop"] * 10 for _ in range(n)]),
        "image": pa.array([png(i) for i in range(n)], image_type),
    }), path)


def test_your_own_checkpoint_block_runs(tmp_path):
    blocks = _blocks_after("run-by-test", "bash")
    assert len(blocks) == 1, "README lost its worked 'your own checkpoint' block"
    model = tmp_path / "models" / "my-vlm"
    shutil.copytree(ROOT / "spikemllm" / "zoo" / "bundled", model)  # a small HF folder with its processor
    _textvqa(tmp_path / "data")
    # `spikemllm` is this checkout's command line, whatever is installed
    script = f'spikemllm() {{ "{sys.executable}" -m spikemllm.cli.main "$@"; }}\nset -euo pipefail\n' + blocks[0]
    env = {**os.environ, "MODEL": str(model), "DATA": str(tmp_path / "data"), "RUNS": str(tmp_path / "runs"),
           "PYTHONPATH": str(ROOT)}
    p = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert (tmp_path / "runs" / "spiking" / "manifest.json").is_file()
    folders = sorted(d.name for d in (tmp_path / "runs" / "lmms").iterdir())
    assert folders == ["models__my-vlm", "runs__spiking"]  # lmms-eval's <model_name_sanitized>
    for d in folders:
        results = list((tmp_path / "runs" / "lmms" / d).glob("*_results.json"))
        samples = list((tmp_path / "runs" / "lmms" / d).glob("*_samples_textvqa_val.jsonl"))
        assert len(results) == len(samples) == 1
        assert json.loads(results[0].read_text())["n-samples"]["textvqa_val"]["effective"] == 3
    assert "compute only:" in p.stdout and "accelerator" in p.stdout.lower()


def test_layout_example_is_a_valid_layout():
    from spikemllm.models import load_layout

    (block,) = _blocks_after("layout-example", "json")
    lay = load_layout(json.loads(block))
    assert (lay.vision, lay.projector, lay.lm, lay.lm_layers) == ("vpm", "resampler", "llm.model", "llm.model.layers")
    assert "--layout" in README.read_text()


@pytest.mark.parametrize("name", ["textvqa", "docvqa", "ocrbench", "scienceqa", "mme"])
def test_benchmark_data_rows_name_files_the_loaders_find(name, tmp_path):
    """Each row's file pattern, as the fetch command lays it down, is found by that benchmark's loader."""
    from spikemllm.bench.loaders import LOADERS
    from spikemllm.bench.loaders.common import find_parquet

    row = next(ln for ln in README.read_text().splitlines() if ln.startswith(f"| `{name}` |"))
    pattern = re.search(r"`([^`]+\*\.parquet)`", row).group(1)
    shard = tmp_path / pattern.replace("*", "00000-of-00001")
    shard.parent.mkdir(parents=True)
    shard.touch()
    assert find_parquet(tmp_path, LOADERS[name].DEFAULT_SPLIT, name, "") == [shard]
    assert "hf download" in row and f"--local-dir ROOT/{name}" in row
    include = re.search(r'--include "([^"]+)"', row)
    assert include is None or fnmatch.fnmatch(shard.relative_to(tmp_path).as_posix(), include.group(1))
