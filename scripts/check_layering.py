#!/usr/bin/env python3
"""Find model-family knowledge in spikemllm code outside ``spikemllm/models/``; exit 1 if there is any.

Why: per-family knowledge (which modules a family's blocks hold, how its config reads, what its classes are
called) belongs in the family adapters of ``spikemllm/models/``; the rest of the package asks the adapter's
:class:`~spikemllm.models.ModelMap` (or :func:`~spikemllm.models.shape_of_config`). A ``grep -i qwen`` cannot
tell code from a docstring, a comment or the paper's figures; this reads the code (Python's ``ast``), so
comments and docstrings never count, and what remains is either a finding or an entry of :data:`ALLOWED`, each
with the reason it is data or documentation and not family logic.

What counts as family-specific code (outside ``models/``):

* ``family-name``: an identifier (name, attribute, import, definition, argument, keyword) or a string constant
  (a docstring excepted; f-string parts included) that names a family (:data:`FAMILIES`), e.g.
  ``transformers.LlavaForConditionalGeneration`` or ``model_type == "qwen2_vl"``;
* ``module-name``: a string constant that is a module path (``"mlp.down_proj"``) with a part from a family's block
  or model layout (:data:`LAYOUT_NAMES`), or an attribute of that name (``block.self_attn``); a sentence that
  only mentions such a name (an error message's example) is not a module path and does not count;
* ``config-field``: a read of a config field only some families have (:data:`FAMILY_CONFIG_FIELDS`), as an
  attribute or as a string (``getattr(vis, "spatial_merge_size")``);
* ``class-name``: a comparison of ``type(x).__name__`` or ``x.__class__.__name__`` with strings (class-name
  sniffing), of any family.

An entry of :data:`ALLOWED` that matches nothing is reported too, so the list cannot outlive its reasons.

Usage: ``python scripts/check_layering.py [package_dir]`` (default: ``spikemllm`` next to this script's folder).
"""
from __future__ import annotations

import ast
import fnmatch
import re
import sys
from dataclasses import dataclass
from pathlib import Path

#: Family names, matched case-insensitively inside identifiers and strings.
FAMILIES = ("qwen", "llava", "internvl", "idefics", "smolvlm", "llama")
_FAMILY_RE = re.compile("|".join(FAMILIES), re.I)

#: Module names of the families' blocks and models (decoder projections and norms, vision/projector roots).
LAYOUT_NAMES = frozenset({
    "q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "gate_proj", "up_proj", "down_proj", "gate_up_proj",
    "input_layernorm", "post_attention_layernorm", "self_attn", "embed_tokens", "multi_modal_projector",
    "vision_tower", "vision_model", "language_model", "visual", "merger", "connector", "modality_projection",
})

#: Config fields that belong to some families only (vision merge, video and image-token conventions).
FAMILY_CONFIG_FIELDS = frozenset({
    "spatial_merge_size", "temporal_patch_size", "image_token_index", "vision_feature_layer",
    "vision_feature_select_strategy", "downsample_ratio", "mm_token_type_ids", "video_token_id",
    "vision_start_token_id", "vision_end_token_id", "fullatt_block_indexes", "out_hidden_size",
})

_MODULE_PATH = re.compile(r"^[A-Za-z_]\w*(\.\w+)*$")


@dataclass(frozen=True)
class Allowed:
    """A finding that is data or documentation: ``path`` (a glob relative to the package), the ``rule`` and the
    ``text`` it found (``None``: any text), and why it stays."""

    path: str
    rule: str
    text: str | None
    why: str


ALLOWED: tuple[Allowed, ...] = (
    # The bundled model is a LLaVA checkpoint: its recipe (zoo/tiny_vlm.py) builds that family and its loader
    # names that class, by definition. Everything else asks zoo.bundled_model_class().
    Allowed("zoo/*", "family-name", None, "the bundled checkpoint is a LLaVA; zoo/ is its recipe and loader"),
    # The paper's own figures, printed beside ours: the table title names the model the paper measured.
    Allowed("hardware/report.py", "family-name",
            "Paper (Qwen2VL-7B, batch 1, A800 FP16; its accelerator config is not public)",
            "a table title naming the paper's measured model (data)"),
)


#: One finding: (path relative to the package, line, rule, the text found).
Finding = tuple[str, int, str, str]


def _docstring_nodes(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (of the module, classes and functions)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                out.add(id(first.value))
    return out


def _is_class_name(node: ast.AST) -> bool:
    """``type(x).__name__`` or ``x.__class__.__name__``."""
    if not (isinstance(node, ast.Attribute) and node.attr == "__name__"):
        return False
    v = node.value
    return (isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "type") or \
        (isinstance(v, ast.Attribute) and v.attr == "__class__")


def _strings(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [s for e in node.elts for s in _strings(e)]
    return []


def _identifiers(node: ast.AST) -> list[str]:
    """The names a node spells in code."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.keyword) and node.arg:
        return [node.arg]
    if isinstance(node, ast.alias):
        return [node.name, node.asname or ""]
    if isinstance(node, ast.ImportFrom) and node.module:
        return [node.module]
    return []


def findings_in(path: Path, rel: str) -> list[Finding]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    docs = _docstring_nodes(tree)
    out: list[Finding] = []

    def add(node: ast.AST, rule: str, text: str) -> None:
        out.append((rel, getattr(node, "lineno", 0), rule, text))

    for node in ast.walk(tree):
        for name in _identifiers(node):
            if _FAMILY_RE.search(name):
                add(node, "family-name", name)
        if isinstance(node, ast.Attribute):
            if node.attr in LAYOUT_NAMES:
                add(node, "module-name", node.attr)
            if node.attr in FAMILY_CONFIG_FIELDS:
                add(node, "config-field", node.attr)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            s = node.value
            if _FAMILY_RE.search(s):
                add(node, "family-name", s)
            if _MODULE_PATH.match(s):
                parts = set(s.split("."))
                if parts & LAYOUT_NAMES:
                    add(node, "module-name", s)
                if parts & FAMILY_CONFIG_FIELDS:
                    add(node, "config-field", s)
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_is_class_name(o) for o in operands):
                for o in operands:
                    for s in _strings(o):
                        add(o, "class-name", s)
    return out


def _allowed_by(f: Finding, allowed: tuple[Allowed, ...]) -> Allowed | None:
    path, _, rule, text = f
    for a in allowed:
        if fnmatch.fnmatch(path, a.path) and a.rule == rule and (a.text is None or a.text == text):
            return a
    return None


def check(root: Path, allowed: tuple[Allowed, ...] = ALLOWED) -> list[str]:
    """Messages, one per finding not in ``allowed`` and one per allow-list entry that matched nothing."""
    msgs: list[str] = []
    used: set[Allowed] = set()
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root).as_posix()
        if "__pycache__" in p.parts or rel.startswith("models/"):
            continue
        for f in sorted(findings_in(p, rel), key=lambda f: f[1]):
            a = _allowed_by(f, allowed)
            if a is None:
                msgs.append("{}:{}: {}: {!r}".format(*f))
            else:
                used.add(a)
    msgs += [f"allow-list entry matches nothing (remove it): {a.path} {a.rule} {a.text!r}"
             for a in allowed if a not in used]
    return msgs


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "spikemllm"
    msgs = check(root.resolve())
    for m in msgs:
        print(m)
    if not msgs:
        print(f"no model-family code outside {root / 'models'}")
    return 1 if msgs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
