"""No model-family code outside spikemllm/models/ (scripts/check_layering.py): family names, a family's module
names and config fields, class-name sniffing; data and documentation only by the script's commented allow-list."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check_layering.py"


def _checker():
    spec = importlib.util.spec_from_file_location("check_layering", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    return mod


def test_spikemllm_has_no_family_code_outside_models():
    r = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_checker_finds_each_kind_and_spares_docs_and_models(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "models").mkdir(parents=True)
    (pkg / "core.py").write_text(
        '"""Docs may name Qwen2-VL and q_proj."""\n'
        "import transformers\n"
        "# a comment about LLaVA\n"
        "def f(model, vis, m):\n"
        '    """Nor does a function docstring: llama."""\n'
        "    cls = transformers.LlavaForConditionalGeneration\n"         # family-name (attribute)
        '    if model.config.model_type == "qwen2_vl":\n'                  # family-name (string)
        '        pass\n'
        '    layer = model.get_submodule("mlp.down_proj")\n'               # module-name (string)
        "    attn = m.self_attn\n"                                          # module-name (attribute)
        "    merge = vis.spatial_merge_size\n"                              # config-field
        '    if type(m).__name__ in ("DecoderLayer", "Block"):\n'           # class-name
        "        pass\n"
        "    raise ValueError(\"use module names such as 'q_proj'\")\n")   # a sentence: not a module path
    (pkg / "models" / "fam.py").write_text('LAYERS = "model.language_model.layers"  # qwen2_vl: allowed here\n')
    (pkg / "paper.py").write_text('TITLE = "Paper (Qwen2VL-7B)"\n')
    mod = _checker()
    allowed = (mod.Allowed("paper.py", "family-name", "Paper (Qwen2VL-7B)", "the paper's model, data"),
               mod.Allowed("gone.py", "family-name", None, "a stale entry"))
    msgs = mod.check(pkg, allowed)
    found = {(m.split(": ")[1], m.split(": ", 2)[2]) for m in msgs if m.startswith("core.py")}
    assert found == {("family-name", "'LlavaForConditionalGeneration'"), ("family-name", "'qwen2_vl'"),
                     ("module-name", "'mlp.down_proj'"), ("module-name", "'self_attn'"),
                     ("config-field", "'spatial_merge_size'"), ("class-name", "'DecoderLayer'"),
                     ("class-name", "'Block'")}, msgs
    assert not any(m.startswith(("models/", "paper.py")) for m in msgs), msgs  # models/ and the allow-list
    assert any(m.startswith("allow-list entry matches nothing") and "gone.py" in m for m in msgs), msgs
