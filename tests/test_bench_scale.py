"""benchmarks/bench_scale.py --small goes through every part's code path (fresh processes, checkpoint writing,
streaming CLI conversion, spiking load) in seconds, so the full run on the 2B shape does not fail halfway."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_small_run_measures_every_part(tmp_path):
    out = tmp_path / "rows.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--small", "--reps", "1", "--decode-reps", "1",
           "--threads", "1", "--7b", "measure", "--json", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    doc = json.loads(out.read_text())
    rows = doc["rows"]
    assert set(rows) == {"fp32", "bf16", "convert-inplace", "convert-stream", "fused", "faithful", "7b"}
    assert not [k for k, r in rows.items() if "error" in r], rows
    for part in ("fp32", "bf16", "fused", "faithful"):
        r = rows[part]
        # 1 vision start + 4 image tokens (16x16 image, 4x4 patches, 2x2 merge) + 1 vision end + 16 text tokens
        assert r["prefill_tokens"] == 22 and r["decode_tokens"] == 4 and r["resident"] > r["base"] > 0
        assert r["peak"] >= r["resident"]
    assert rows["faithful"]["same_tokens_as_fused"] is True
    assert rows["convert-stream"]["convert_peak"] > 0 and rows["convert-inplace"]["convert_s"] > 0
    assert rows["7b"]["how"] == "measured" and rows["7b"]["convert_peak"] > 0
    assert "| fused |" in p.stdout and "streaming convert peak / FP32 resident" in p.stdout
    assert not list(tmp_path.glob("bench-scale-*"))  # the temporary checkpoints are removed
