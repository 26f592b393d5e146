"""benchmarks/bench_gpu.py works before a GPU session spends its minutes: the dry run (tiny shapes, CPU) goes
through every row's code path; the time guard and the power integration do what they say; gpu.sh installs
nothing where there is no NVIDIA driver."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(BENCH / "bench_gpu.py"), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT)


def test_dry_run_measures_every_row_and_spiking_modes_agree(tmp_path):
    out = tmp_path / "rows.json"
    p = _run("--dry-run", "--json", str(out))
    assert p.returncode == 0, p.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [(r["model"], r["setting"]) for r in rows] == [(m, s) for m in ("2b", "7b")
                                                          for s in ("fp16", "bf16", "fused", "faithful")]
    for r in rows:
        assert not r["note"].startswith(("failed", "not run")), r
        # 1 vision start + 4 image tokens (16x16 image, 4x4 patches, 2x2 merge) + 1 vision end + 16 text tokens
        assert r["prefill_tokens"] == 22 and r["decode_tokens"] == 4 and len(r["tokens"]) == 5
        assert r["prefill_s"] > 0 and r["decode_s"] > 0 and r["prefill_j"] is None
    for m in ("2b", "7b"):
        fused, faithful = (next(r for r in rows if r["model"] == m and r["setting"] == s)
                           for s in ("fused", "faithful"))
        assert fused["tokens"] == faithful["tokens"] and "same 5 tokens as fused" in faithful["note"]
        assert fused["convert_s"] is not None and fused["dtype"] == "bfloat16"
    table = [ln for ln in p.stdout.splitlines() if ln.startswith("| 2b") or ln.startswith("| 7b")]
    assert len(table) == 8 and "GPU power is not sampled; energy columns show n/a" in p.stdout


def test_time_budget_skips_rows_instead_of_overrunning():
    p = _run("--dry-run", "--budget-s", "0", "--models", "2b", "--settings", "fp16,fused")
    assert p.returncode == 0
    rows = [ln for ln in p.stdout.splitlines() if ln.startswith("| 2b")]
    assert len(rows) == 2 and all("not run: time budget (0 s) spent" in r for r in rows)


def test_without_cuda_it_says_what_to_do_and_fails():
    p = _run("--models", "2b")
    assert p.returncode == 2 and "no CUDA device" in p.stderr and "--dry-run" in p.stderr


def test_power_integration_is_the_trapezoid_over_the_window():
    sys.path.insert(0, str(BENCH))
    try:
        from gpu_power import PowerSampler
    finally:
        sys.path.remove(str(BENCH))
    s = PowerSampler.__new__(PowerSampler)
    s.samples = [(0.0, 100.0), (1.0, 200.0), (2.0, 200.0), (3.0, 100.0)]
    assert s.energy_j(0.0, 3.0) == pytest.approx(150 + 200 + 150)
    assert s.energy_j(0.5, 1.5) == pytest.approx(0.5 * (150 + 200) / 2 + 0.5 * 200)  # edges interpolated
    assert s.energy_j(5.0, 6.0) == pytest.approx(100.0)  # after the last sample: its power
    s.samples = [(0.0, 100.0)]
    assert s.energy_j(0.0, 1.0) is None


@pytest.mark.skipif(os.name != "posix", reason="bash script")
def test_gpu_sh_installs_nothing_without_an_nvidia_driver(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    if any((Path(d) / "nvidia-smi").exists() for d in env["PATH"].split(":")):
        pytest.skip("this machine has nvidia-smi")
    p = subprocess.run(["bash", str(BENCH / "gpu.sh")], capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
    assert p.returncode == 2 and "nvidia-smi not found" in p.stderr and "--dry-run" in p.stderr
    assert not (ROOT / ".venv-gpu").exists()
