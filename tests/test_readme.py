"""The README's Python quick start runs as written (docs that drift from the code fail here)."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_quick_start_runs(tmp_path, monkeypatch):
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README lost its Python quick start"
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)  # noqa: S102  (our own documentation)
    assert (tmp_path / "out" / "qwen2vl-spiking" / "model.safetensors").is_file()


def test_readme_starts_with_the_two_commands():
    head = README.read_text().split("---")[0]
    cmds = re.findall(r"^bash (scripts/\S+)", head, flags=re.M)
    assert cmds == ["scripts/demo.sh", "scripts/test.sh"]
    for c in cmds:
        assert (README.parent / c).is_file()
