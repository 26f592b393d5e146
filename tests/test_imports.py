"""No import cycles in spikemllm, between modules or between packages (scripts/check_imports.py); and the
package passes every static check under scripts/ (the layering check's own tests: tests/test_layering.py)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check_imports.py"


def _checker():
    spec = importlib.util.spec_from_file_location("check_imports", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("script", ["check_imports.py", "check_layering.py"])
def test_spikemllm_passes_the_static_checks(script):
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_checker_finds_module_and_package_cycles(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "a").mkdir(parents=True)
    (pkg / "b").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("")
    (pkg / "b" / "__init__.py").write_text("")
    (pkg / "a" / "x.py").write_text("from ..b import y\n")                   # package a -> b
    (pkg / "b" / "y.py").write_text("def f():\n    from ..a.z import g\n")     # b -> a, in a function: counts
    (pkg / "a" / "z.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import x\n")
    (pkg / "m.py").write_text("from . import n\n")
    (pkg / "n.py").write_text("import pkg.m\n")
    msgs = _checker().check(pkg)
    assert any(m.startswith("module cycle: pkg.m -> pkg.n -> pkg.m") for m in msgs), msgs
    assert any(m.startswith("package cycle:") and "pkg.a" in m and "pkg.b" in m for m in msgs), msgs
    assert not any(m.startswith("module cycle:") and "pkg.a.x" in m for m in msgs), msgs  # TYPE_CHECKING skipped
