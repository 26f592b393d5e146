"""Run by test_sharding under ``torchrun --nproc_per_node 2``: evaluate a saved model, rank 0 writes JSON."""
from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist

from spikemllm.bench import run_benchmark
from spikemllm.zoo import load_bundled

if __name__ == "__main__":
    torch.set_num_threads(1)
    model_dir, out_file = sys.argv[1], sys.argv[2]
    model, processor = load_bundled(model_dir)
    result = run_benchmark(model, processor, limit=3, batch_size=2, max_new_tokens=4, progress=False)
    if dist.get_rank() == 0:
        with open(out_file, "w") as f:
            json.dump(result, f)
    dist.destroy_process_group()
