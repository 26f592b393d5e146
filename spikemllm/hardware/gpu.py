"""FP16 GPU baseline: a roofline from public specs, run over the same workload jobs as the accelerator.

Why a roofline: it is the best an FP16 GPU can do at batch 1 (every weight read once per token from HBM at
peak bandwidth, every FLOP at peak tensor throughput), so ratios against it are conservative for the
accelerator. Measured frameworks reach a fraction of it (the paper's 43.5 tok/s on an A800 is about a third
of the A800 roofline); ``bandwidth_efficiency`` / ``compute_efficiency`` model that, and
``benchmarks/bench_gpu_fp16.py`` measures it where a GPU exists.

Specs (dense FP16 tensor throughput, no sparsity):
- A800 80GB SXM4: same GA100 configuration as the A100 80GB SXM4 (NVIDIA cut only NVLink to 400 GB/s):
  312 TFLOPS FP16 tensor, 2,039 GB/s HBM2e, 400 W max TDP, 80 GB.
  Sources: NVIDIA A100 datasheet (nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf); NVIDIA A800 40GB/80GB
  datasheets (same compute and memory figures as A100).
- A800 80GB PCIe: 312 TFLOPS FP16 tensor, 1,935 GB/s, 300 W. Source: NVIDIA A800 PCIe datasheet.
- H200 SXM 141GB: 989 TFLOPS FP16 tensor (1,979 with 2:4 sparsity), 4.8 TB/s HBM3e, up to 700 W, 141 GB.
  Source: NVIDIA H200 Tensor Core GPU product page / datasheet (nvidia.com/en-us/data-center/h200).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .workload import MatmulJob, Workload, decode_jobs, prefill_jobs
from .rates import PrefillDecodeRates

__all__ = ["GPUSpec", "GPUS", "get_gpu", "GPUPhase", "GPUResult", "gpu_phase", "run_gpu",
           "PAPER_A800_TOKENS_PER_S", "PAPER_A800_POWER_W", "PAPER_ACCEL_TOKENS_PER_S", "PAPER_ACCEL_POWER_W"]

# The paper's own figures (Qwen2VL-7B, batch 1, A800 FP16 vs its 28 nm accelerator), for side-by-side printing.
PAPER_A800_TOKENS_PER_S = 43.5
PAPER_A800_POWER_W = 184.0
PAPER_ACCEL_TOKENS_PER_S = 393.7
PAPER_ACCEL_POWER_W = 7.13


@dataclass(frozen=True)
class GPUSpec:
    name: str
    fp16_flops: float  # dense FP16 tensor-core FLOP/s
    hbm_bandwidth: float  # bytes/s
    tdp_w: float
    memory_bytes: float
    source: str


GPUS: dict[str, GPUSpec] = {
    "a800": GPUSpec("A800-SXM4-80GB", 312e12, 2.039e12, 400.0, 80e9,
                    "NVIDIA A100/A800 80GB SXM4 datasheets: 312 TFLOPS FP16 tensor, 2039 GB/s, 400 W"),
    "a800-pcie": GPUSpec("A800-PCIe-80GB", 312e12, 1.935e12, 300.0, 80e9,
                         "NVIDIA A800 80GB PCIe datasheet: 312 TFLOPS FP16 tensor, 1935 GB/s, 300 W"),
    "h200": GPUSpec("H200-SXM-141GB", 989e12, 4.8e12, 700.0, 141e9,
                    "NVIDIA H200 datasheet: 989 TFLOPS FP16 tensor (dense), 4.8 TB/s HBM3e, up to 700 W"),
}


def get_gpu(name: str) -> GPUSpec:
    try:
        return GPUS[name.lower()]
    except KeyError:
        raise KeyError(f"unknown GPU {name!r}; known: {sorted(GPUS)}") from None


@dataclass(frozen=True)
class GPUPhase:
    name: str
    seconds: float
    flops: float
    bytes: float
    tokens: int
    bound: str

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


def _fp16_bytes(job: MatmulJob) -> float:
    """FP16 weights (or FP16 K/V for attention jobs): 2 bytes per element, once per repeat."""
    return job.in_features * job.out_features * 2.0 * job.repeat


def gpu_phase(name: str, jobs: Sequence[MatmulJob], spec: GPUSpec, tokens: int, extra_bytes: float = 0.0,
              compute_efficiency: float = 1.0, bandwidth_efficiency: float = 1.0) -> GPUPhase:
    """Roofline time of one phase: max(FLOPs / peak, bytes / bandwidth), each derated by its efficiency."""
    if not (0 < compute_efficiency <= 1 and 0 < bandwidth_efficiency <= 1):
        raise ValueError("efficiencies must lie in (0, 1]")
    flops = sum(2.0 * j.dense_macs for j in jobs)
    nbytes = sum(_fp16_bytes(j) for j in jobs) + extra_bytes
    tc = flops / (spec.fp16_flops * compute_efficiency)
    tm = nbytes / (spec.hbm_bandwidth * bandwidth_efficiency)
    return GPUPhase(name=name, seconds=max(tc, tm), flops=flops, bytes=nbytes, tokens=tokens,
                    bound="compute" if tc >= tm else "memory")


@dataclass(frozen=True)
class GPUResult(PrefillDecodeRates):
    spec: GPUSpec
    prefill: GPUPhase
    decode: GPUPhase
    power_w: float
    power_note: str


def run_gpu(w: Workload, spec: GPUSpec, *, power_w: float | None = None, compute_efficiency: float = 1.0,
            bandwidth_efficiency: float = 1.0) -> GPUResult:
    """The same request in FP16 on ``spec``: prefill, then ``w.output_tokens`` decode steps (FP16 KV cache)."""
    a = w.model.lm_attention
    kv_per_token = 2.0 * a.layers * a.kv_heads * a.head_dim * 2.0
    pre = gpu_phase("prefill", prefill_jobs(w), spec, w.prompt_tokens, kv_per_token * w.prompt_tokens,
                    compute_efficiency, bandwidth_efficiency)
    steps = [gpu_phase("decode", decode_jobs(w, w.prompt_tokens + i + 1), spec, 1, kv_per_token,
                       compute_efficiency, bandwidth_efficiency) for i in range(w.output_tokens)]
    dec = GPUPhase("decode", sum(s.seconds for s in steps), sum(s.flops for s in steps),
                   sum(s.bytes for s in steps), w.output_tokens,
                   "memory" if sum(s.bound == "memory" for s in steps) * 2 >= len(steps) else "compute")
    if power_w is None:
        power_w, note = spec.tdp_w, "TDP (an upper bound; batch-1 decode draws less)"
    else:
        note = "given"
    return GPUResult(spec=spec, prefill=pre, decode=dec, power_w=power_w, power_note=note)
