"""Sharded evaluation under torchrun (gloo, CPU, 2 processes) equals single-process evaluation."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from spikemllm.bench import run_benchmark
from spikemllm.zoo import load_bundled

REPO = Path(__file__).resolve().parents[2]


def test_two_process_gloo_equals_one_process(tiny_vlm, tmp_path):
    model, processor = tiny_vlm
    model = copy.deepcopy(model)
    with torch.no_grad():  # large random weights: answers then vary with the image and question
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                torch.nn.init.normal_(module.weight, std=2 * module.in_features ** -0.5)
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    out = tmp_path / "sharded.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "tests" / "bench" / "shard_worker.py"), str(tmp_path / "model"), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sharded = json.loads(out.read_text())

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reloaded, reprocessor = load_bundled(tmp_path / "model")
        single = run_benchmark(reloaded, reprocessor, limit=3, batch_size=2, max_new_tokens=4, progress=False)
    finally:
        torch.set_num_threads(threads)

    assert sharded["meta"]["world_size"] == 2 and single["meta"]["world_size"] == 1
    assert sharded["records"] == json.loads(json.dumps(single["records"]))
    assert sharded["tasks"] == json.loads(json.dumps(single["tasks"]))
    # The random model must actually say different things, or equality would prove little.
    assert len({r["prediction"] for r in single["records"]}) > 1
