"""scripts/check_layering.py finds model-family code outside spikemllm/models/ (family names, a family's module
names and config fields, class-name sniffing) and spares docs, comments, models/ and its allow-list. That
spikemllm passes it is tested in tests/test_imports.py with the other static checks."""
from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check_layering.py"


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
    script = runpy.run_path(str(SCRIPT), run_name="check_layering")  # the script's globals, not run as main
    allowed = (script["Allowed"]("paper.py", "family-name", "Paper (Qwen2VL-7B)", "the paper's model, data"),
               script["Allowed"]("gone.py", "family-name", None, "a stale entry"))
    msgs = script["check"](pkg, allowed)
    found = {(m.split(": ")[1], m.split(": ", 2)[2]) for m in msgs if m.startswith("core.py")}
    assert found == {("family-name", "'LlavaForConditionalGeneration'"), ("family-name", "'qwen2_vl'"),
                     ("module-name", "'mlp.down_proj'"), ("module-name", "'self_attn'"),
                     ("config-field", "'spatial_merge_size'"), ("class-name", "'DecoderLayer'"),
                     ("class-name", "'Block'")}, msgs
    assert not any(m.startswith(("models/", "paper.py")) for m in msgs), msgs  # models/ and the allow-list
    assert any(m.startswith("allow-list entry matches nothing") and "gone.py" in m for m in msgs), msgs
