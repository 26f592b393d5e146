"""A Qwen2-VL-2B-shaped model on this CPU: FP32 and bf16 against the spiking model, and what conversion costs.

    flock /tmp/spikemllm-cpu.lock python benchmarks/bench_scale.py   # full run: ~15 GiB peak, ~10 min (+4 min 7B)
    python benchmarks/bench_scale.py --small                        # tiny shapes, seconds: checks the code path

It writes a random-weight checkpoint with Qwen2-VL-2B's shapes (2.44 B parameters: 1.78 B in the LM with an
untied lm_head, 0.67 B in the vision tower; bf16, sharded safetensors, as ``save_pretrained`` writes it) into a temporary folder, then measures
each part in a FRESH Python process, so no part inherits another's memory:

* ``fp32`` / ``bf16``: the float model loaded with transformers in that dtype;
* ``convert-inplace``: load FP32, then ``spikemllm.convert`` in place (time, and peak memory of the conversion:
  the process's high-water mark is reset after loading);
* ``convert-stream``: ``spikemllm convert --model DIR`` (the CLI, streaming block by block, saving included);
  its output is the spiking checkpoint the next parts load (``spikemllm.load``);
* ``fused`` / ``faithful``: the spiking model (TC-LIF, Tv/Tt = 3/4, W4 RTN; non-spiking layers in the
  checkpoint's bf16) in fused and faithful mode.

Per model part: prefill (one 224x224 image + 256 text tokens, one forward without cache; min of ``--reps``),
greedy decode of 32 tokens with the KV cache (``generate``; min over ``--decode-reps`` runs of the decode
phase's time), peak memory of the process (``ru_maxrss``) and resident memory after one forward (``VmRSS``).
Weights are random: only shapes matter for time and memory. The table gives ratios against FP32 and bf16 and
checks the acceptance ratios of issue 12. The 7B-shaped conversion (``--7b``) is measured when the machine has
the memory and time for it, else extrapolated from the measured per-block figures.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
GiB = 1024 ** 3

# Qwen2-VL's published 2B/7B configs (bench_gpu.py holds them) at a 224x224 image; --small: bench_gpu's tiny shapes.
from bench_gpu import SHAPES, TINY, build, inputs_for, timed_generate  # noqa: E402

SPIKE_CONFIG = {"coder": "tc-lif", "timesteps": {"vision": 3, "text": 4}, "weight_bits": 4, "method": "rtn"}
MODEL_PARTS = ("fp32", "bf16", "fused", "faithful")
CONVERT_PARTS = ("convert-inplace", "convert-stream")


def shape_of(name: str, small: bool) -> dict[str, Any]:
    """bench_gpu's shape at a 224x224 image. The 2B shape gets its own ``lm_head`` (not tied to the embeddings):
    that is the 2.44 B-parameter model issue 12 measured (Qwen2-VL-2B itself ties them: 2.21 B)."""
    s = dict((TINY if small else SHAPES)[name])
    s["image"] = (16, 16) if small else (224, 224)
    if name == "2b":
        s["text"] = dict(s["text"], tie_word_embeddings=False)
    return s


# --- memory of this process --------------------------------------------------------------------------------
def _status() -> dict[str, int]:
    text = Path("/proc/self/status").read_text()
    return {k: int(v) * 1024 for k, v in re.findall(r"^(VmHWM|VmRSS):\s+(\d+) kB", text, flags=re.M)}


def reset_peak() -> bool:
    """Reset this process's memory high-water mark (Linux ``clear_refs``); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# --- the checkpoint ----------------------------------------------------------------------------------------
def write_checkpoint(shape: dict[str, Any], folder: Path, shard_bytes: int) -> dict[str, Any]:
    """A random bf16 checkpoint of ``shape`` written shard by shard (never the whole model in memory)."""
    import torch
    from safetensors.torch import save_file

    meta = build_meta(shape)
    folder.mkdir(parents=True, exist_ok=True)
    meta.config.dtype = torch.bfloat16
    meta.config.save_pretrained(folder)
    state = meta.state_dict()
    tied = getattr(meta.config.get_text_config(), "tie_word_embeddings", False)
    keys = [k for k in state if not (tied and k == "lm_head.weight")]
    g = torch.Generator().manual_seed(0)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size, total, params = 0, 0, 0
    names: list[str] = []

    def flush() -> None:
        name = f"model-{len(names) + 1:05d}.safetensors"
        save_file(shards[-1], str(folder / name), metadata={"format": "pt"})
        names.append(name)
        shards[-1] = {}

    weight_map: dict[str, int] = {}
    for k in keys:
        t = state[k]
        if k.endswith("bias"):
            v = torch.zeros(t.shape, dtype=torch.bfloat16)
        elif t.dim() == 1:
            v = torch.ones(t.shape, dtype=torch.bfloat16)
        else:
            v = (torch.randn(t.shape, generator=g) * 0.02).to(torch.bfloat16)
        if size and size + v.numel() * 2 > shard_bytes:
            flush()
            size = 0
        shards[-1][k] = v
        weight_map[k] = len(names)
        size += v.numel() * 2
        total += v.numel() * 2
        params += v.numel()
    flush()
    n = len(names)
    final = {}
    for i, old in enumerate(names):
        new = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
        (folder / old).rename(folder / new)
        final[i] = new
    index = {"metadata": {"total_size": total}, "weight_map": {k: final[i] for k, i in weight_map.items()}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=1))
    return {"params": params, "bytes": total, "shards": n}


def build_meta(shape: dict[str, Any]):
    """The model of ``shape`` on the meta device (no storage)."""
    import torch

    return build(shape, torch.bfloat16, "meta")


# --- parts (each runs in its own process) ------------------------------------------------------------------
def _model_part(part: str, folder: Path, spiking: Path, shape: dict[str, Any], args: argparse.Namespace) -> dict:
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    import spikemllm

    torch.set_num_threads(args.threads)
    base = _status()["VmRSS"]  # the interpreter, torch and transformers, before any model
    t0 = time.perf_counter()
    if part in ("fp32", "bf16"):

        dtype = torch.float32 if part == "fp32" else torch.bfloat16
        model = Qwen2VLForConditionalGeneration.from_pretrained(str(folder), dtype=dtype,
                                                                attn_implementation="sdpa").eval()
        in_dtype = dtype
    else:
        model = spikemllm.load(spiking)
        spikemllm.set_mode(model, part)
        in_dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
    load_s = time.perf_counter() - t0
    inputs = inputs_for(model, shape, args.text_tokens, "cpu", in_dtype)
    n = int(inputs["input_ids"].shape[1])
    prefill = []
    for _ in range(args.reps):
        t = time.perf_counter()
        with torch.no_grad():
            model(**inputs, use_cache=False)
        prefill.append(time.perf_counter() - t)
        if part == "faithful" and prefill[-1] > args.slow_s:
            break  # the most expensive part: fewer repetitions, stated in the table
    resident = _status()["VmRSS"]
    decode, tokens = [], None
    for _ in range(args.decode_reps):
        times, tokens = timed_generate(model, dict(inputs), args.new_tokens, float("inf"), lambda: None)
        decode.append((times[-1] - times[1], len(times) - 2))
        if part == "faithful" and times[-1] - times[0] > args.slow_s:
            break
    best = min(decode)
    return {"part": part, "load_s": load_s, "prefill_tokens": n, "prefill_s": min(prefill), "prefill_reps": len(prefill),
            "decode_tokens": best[1], "decode_s": best[0], "decode_reps": len(decode), "resident": resident,
            "base": base, "tokens": tokens}


def _convert_inplace(folder: Path, args: argparse.Namespace) -> dict:
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    import spikemllm

    torch.set_num_threads(args.threads)
    model = Qwen2VLForConditionalGeneration.from_pretrained(str(folder), dtype=torch.float32,
                                                            attn_implementation="sdpa").eval()
    loaded = _status()["VmRSS"]
    reset = reset_peak()
    t = time.perf_counter()
    spikemllm.convert(model, spikemllm.SpikeConfig(**SPIKE_CONFIG), progress=False)
    s = time.perf_counter() - t
    st = _status()
    return {"part": "convert-inplace", "convert_s": s, "loaded": loaded, "convert_peak": st["VmHWM"] if reset else None,
            "resident": st["VmRSS"]}


def _wait_peak(p: subprocess.Popen, timeout: float) -> tuple[int | None, int]:
    """Wait for ``p``; its own peak RSS in bytes (``wait4``), and its exit status. Pipes are drained to files."""
    deadline = time.time() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return ru.ru_maxrss * 1024, p.returncode
        if time.time() > deadline:
            p.kill()
            _, status, ru = os.wait4(p.pid, 0)
            p.returncode = -9
            return ru.ru_maxrss * 1024, -9
        time.sleep(0.2)


def spawn(argv: list[str], timeout: float, threads: int) -> dict:
    """A ``--part`` in a fresh process with its peak memory from ``wait4`` (output through temp files, so a
    chatty child never blocks on a full pipe)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        env = {**os.environ, "PYTHONPATH": str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
        t = time.perf_counter()
        p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *argv], stdout=out, stderr=err,
                             text=True, env=env)
        peak, rc = _wait_peak(p, timeout)
        wall = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        lines = out.read().splitlines()
        etext = err.read()
    line = next((ln for ln in reversed(lines) if ln.startswith("{")), None)
    if rc != 0 or line is None:
        why = "timed out" if rc == -9 else (etext.strip().splitlines() or ["no output"])[-1][:300]
        return {"error": why, "wall_s": wall, "peak": peak}
    res = json.loads(line)
    res.update(wall_s=wall, peak=peak)
    return res


def spawn_cli_convert(folder: Path, out: Path, cfg: Path, timeout: float, threads: int) -> dict:
    with tempfile.TemporaryFile("w+") as so, tempfile.TemporaryFile("w+") as se:
        env = {**os.environ, "PYTHONPATH": str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               "OMP_NUM_THREADS": str(threads)}
        t = time.perf_counter()
        p = subprocess.Popen([sys.executable, "-m", "spikemllm.cli.main", "convert", "--model", str(folder),
                              "--config", str(cfg), "--out", str(out), "--overwrite"], stdout=so, stderr=se,
                             text=True, env=env)
        peak, rc = _wait_peak(p, timeout)
        wall = time.perf_counter() - t
        so.seek(0)
        se.seek(0)
        text, etext = so.read(), se.read()
    if rc != 0:
        return {"part": "convert-stream", "error": (etext.strip().splitlines() or ["failed"])[-1][:300], "peak": peak}
    est = re.search(r"memory estimate: ([\d.]+) GiB peak", text)
    took = re.search(r"saved .* in ([\d.]+)s", text)
    return {"part": "convert-stream", "convert_s": float(took.group(1)) if took else wall, "wall_s": wall,
            "peak": peak, "convert_peak": peak, "estimate_gib": float(est.group(1)) if est else None}


# --- the table ---------------------------------------------------------------------------------------------
def _r(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def _g(b: float | None) -> str:
    return f"{b / GiB:.2f}" if b is not None else "-"


def table(rows: dict[str, dict], ckpt: dict[str, Any]) -> str:
    fp, bf = rows.get("fp32", {}), rows.get("bf16", {})
    lines = ["| part | reps (prefill/decode) | prefill s | vs FP32 | vs bf16 | decode tok/s | vs FP32 | vs bf16 | "
             "peak GiB | vs FP32 | resident GiB | vs FP32 | vs bf16 | resident less imports GiB | vs FP32 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def net(r: dict) -> float | None:
        return r["resident"] - r["base"] if r.get("base") is not None else None


    def rate(r: dict) -> float | None:
        return r["decode_tokens"] / r["decode_s"] if r.get("decode_s") else None

    for part in MODEL_PARTS:
        r = rows.get(part)
        if r is None:
            continue
        if "error" in r:
            lines.append(f"| {part} | failed: {r['error']} |" + " |" * 13)
            continue
        lines.append(f"| {part} | {r['prefill_reps']}/{r['decode_reps']} | {r['prefill_s']:.2f} | "
                     f"{_r(r['prefill_s'], fp.get('prefill_s'))} | {_r(r['prefill_s'], bf.get('prefill_s'))} | "
                     f"{rate(r):.2f} | {_r(rate(r), rate(fp) if fp else None)} | "
                     f"{_r(rate(r), rate(bf) if bf else None)} | {_g(r['peak'])} | {_r(r['peak'], fp.get('peak'))} | "
                     f"{_g(r['resident'])} | {_r(r['resident'], fp.get('resident'))} | "
                     f"{_r(r['resident'], bf.get('resident'))} | {_g(net(r))} | {_r(net(r), net(fp) if fp else None)} |")
    lines += ["", "| conversion | reps | time s | peak GiB | vs FP32 resident | vs bf16 resident | note |",
              "|---|---|---|---|---|---|---|"]
    for part in CONVERT_PARTS:
        r = rows.get(part)
        if r is None:
            continue
        if "error" in r:
            lines.append(f"| {part} | 1 | failed: {r['error']} | | | | |")
            continue
        note = ("peak of convert() after loading FP32 (high-water mark reset after the load); loaded "
                f"{_g(r.get('loaded'))} GiB" if part == "convert-inplace" else
                f"the CLI, process peak (imports, save included); its estimate said {r.get('estimate_gib')} GiB")
        lines.append(f"| {part} | 1 | {r['convert_s']:.1f} | {_g(r.get('convert_peak'))} | "
                     f"{_r(r.get('convert_peak'), fp.get('resident'))} | {_r(r.get('convert_peak'), bf.get('resident'))}"
                     f" | {note} |")
    for key in ("7b",):
        r = rows.get(key)
        if r:
            lines.append(f"| convert-stream 7B ({r['how']}) | {1 if r['how'] == 'measured' else '-'} | "
                         f"{r['convert_s']:.0f} | {_g(r['convert_peak'])} | - | - | {r['note']} |")
    lines.append("")
    lines.append(f"checkpoint: {ckpt['params'] / 1e9:.2f} B parameters, {ckpt['bytes'] / GiB:.2f} GiB bf16 in "
                 f"{ckpt['shards']} shards; written in {ckpt.get('write_s', 0):.0f}s")
    return "\n".join(lines)


def acceptance(rows: dict[str, dict]) -> list[tuple[str, float | None, str, bool | None]]:
    fp = rows.get("fp32", {})

    def get(part: str, key: str) -> float | None:
        r = rows.get(part, {})
        return r.get(key) if "error" not in r else None

    def rate(part: str) -> float | None:
        r = rows.get(part, {})
        return r["decode_tokens"] / r["decode_s"] if r.get("decode_s") else None

    checks = [
        ("fused prefill / FP32 prefill", get("fused", "prefill_s"), get("fp32", "prefill_s"), "<=", 0.6),
        ("fused decode tok/s / FP32 decode tok/s", rate("fused"), rate("fp32"), ">=", 2.0),
        ("faithful T=4 prefill / FP32 prefill", get("faithful", "prefill_s"), get("fp32", "prefill_s"), "<=", 2.0),
        ("spiking resident / FP32 resident", get("fused", "resident"), fp.get("resident"), "<=", 0.35),
        ("in-place convert peak / FP32 resident", get("convert-inplace", "convert_peak"), fp.get("resident"), "<=", 1.1),
        ("streaming convert peak / FP32 resident", get("convert-stream", "convert_peak"), fp.get("resident"), "<=", 0.6),
    ]
    out = []
    for name, a, b, op, bound in checks:
        ratio = a / b if a is not None and b else None
        ok = None if ratio is None else (ratio <= bound if op == "<=" else ratio >= bound)
        out.append((name, ratio, f"{op} {bound}", ok))
    return out


# --- 7B ----------------------------------------------------------------------------------------------------
def estimate_7b(rows: dict[str, dict], small: bool) -> dict[str, Any]:
    """The 7B streaming conversion extrapolated from the 2B one: time per parameter, and the 2B measured peak
    scaled by the ratio of the two models' estimates (spiking model + one float block)."""
    from spikemllm import SpikeConfig
    from spikemllm.models import describe
    from spikemllm.spikify.select import select_targets
    from spikemllm.spikify.stream import _estimate

    out = {}
    for name in ("2b", "7b"):
        meta = build_meta(shape_of(name, small))
        cfg = SpikeConfig(**SPIKE_CONFIG)
        mm = describe(meta)
        state = meta.state_dict()
        blocks = [(p, [k for k in state if k.startswith(p + ".")]) for kind in ("vision", "lm")
                  for p in [f"{mm.vision_layers if kind == 'vision' else mm.lm_layers}.{i}"
                            for i in range(mm.num_layers(kind))]]
        est = _estimate(meta, {}, select_targets(mm, cfg), blocks, cfg, meta.dtype)
        out[name] = (est, sum(t.numel() for t in state.values()))
    s2 = rows.get("convert-stream", {})
    (e2, n2), (e7, n7) = out["2b"], out["7b"]
    if "convert_s" not in s2:
        return {}
    return {"how": "extrapolated", "convert_s": s2["convert_s"] * n7 / n2,
            "convert_peak": s2["convert_peak"] * e7.peak / e2.peak,
            "note": f"from the 2B run: time x {n7 / n2:.2f} (parameters), peak x {e7.peak / e2.peak:.2f} (estimates "
                    f"{e2.peak / GiB:.1f} -> {e7.peak / GiB:.1f} GiB); float 7B model {e7.float_model / GiB:.1f} GiB bf16"}


def fits_7b(extrapolated: dict[str, Any], work: Path) -> bool:
    """Enough memory (the extrapolated peak, with 20% to spare) and disk (the bf16 checkpoint twice) now."""
    from spikemllm.spikify.stream import available_memory

    avail = available_memory() or 0
    disk = shutil.disk_usage(work).free
    need_disk = 2 * 8.3e9 * 2
    return bool(extrapolated) and extrapolated["convert_peak"] * 1.2 < avail and disk > need_disk


def measure_7b(work: Path, cfg: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Write the 7B-shaped checkpoint, convert it with the CLI (streaming), then delete both."""
    folder, out = work / "qwen2vl-7b-shaped", work / "spiking-7b"
    try:
        w = spawn(["--part", "write-7b", "--folder", str(folder)] + (["--small"] if args.small else []),
                  args.timeout, args.threads)
        if "error" in w:
            return {"error": f"writing: {w['error']}"}
        r = spawn_cli_convert(folder, out, cfg, args.timeout, args.threads)
        if "error" in r:
            return {"error": r["error"]}
        return {"how": "measured", "convert_s": r["convert_s"], "convert_peak": r["convert_peak"],
                "note": f"{w['params'] / 1e9:.2f} B parameters, {w['bytes'] / GiB:.1f} GiB bf16 checkpoint; the CLI's "
                        f"estimate said {r.get('estimate_gib')} GiB"}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


# --- main --------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="tiny shapes (seconds): checks every part's code path")
    ap.add_argument("--reps", type=int, default=3, help="prefill repetitions (min is reported)")
    ap.add_argument("--decode-reps", type=int, default=None, help="generate repetitions (default: 3 small, 2 full)")
    ap.add_argument("--text-tokens", type=int, default=None, help="text tokens after the image (default 256; small 16)")
    ap.add_argument("--new-tokens", type=int, default=None, help="greedy decode tokens (default 32; small 4)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--slow-s", type=float, default=120.0,
                    help="a faithful repetition slower than this is not repeated (stated in the table)")
    ap.add_argument("--parts", default=",".join(("fp32", "bf16", *CONVERT_PARTS, "fused", "faithful")))
    ap.add_argument("--7b", dest="seven", choices=("auto", "measure", "extrapolate", "skip"), default="auto",
                    help="the 7B-shaped streaming conversion: measured when it fits (auto), always, or only "
                         "extrapolated from the 2B run")
    ap.add_argument("--json", help="write the measured rows here too")
    ap.add_argument("--workdir", help="keep the checkpoints here instead of a temporary folder")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per part")
    # internal: one part in this process
    ap.add_argument("--part", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--spiking", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.text_tokens = args.text_tokens or (16 if args.small else 256)
    args.new_tokens = args.new_tokens or (4 if args.small else 32)
    args.decode_reps = args.decode_reps or (3 if args.small else 2)
    shape = shape_of("2b", args.small)
    if args.part:
        if args.part == "write":
            t = time.perf_counter()
            info = write_checkpoint(shape, Path(args.folder), 64 * 1024 if args.small else 2 * GiB)
            info["write_s"] = time.perf_counter() - t
            print(json.dumps(info))
        elif args.part == "write-7b":
            print(json.dumps(write_checkpoint(shape_of("7b", args.small), Path(args.folder),
                                              64 * 1024 if args.small else 2 * GiB)))
        elif args.part == "convert-inplace":
            print(json.dumps(_convert_inplace(Path(args.folder), args)))
        else:
            print(json.dumps(_model_part(args.part, Path(args.folder), Path(args.spiking), shape, args)))
        return 0

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-scale-"))
    folder, spiking = work / "qwen2vl-2b-shaped", work / "spiking"
    common = ["--folder", str(folder), "--spiking", str(spiking), "--reps", str(args.reps), "--decode-reps",
              str(args.decode_reps), "--text-tokens", str(args.text_tokens), "--new-tokens", str(args.new_tokens),
              "--threads", str(args.threads), "--slow-s", str(args.slow_s)] + (["--small"] if args.small else [])
    parts = [p for p in args.parts.split(",") if p]
    rows: dict[str, dict] = {}
    started = time.time()

    def note(msg: str) -> None:
        print(f"[bench_scale {time.time() - started:6.0f}s] {msg}", file=sys.stderr, flush=True)

    def save_rows() -> None:
        if args.json:
            Path(args.json).write_text(json.dumps({"rows": rows, "ckpt": ckpt}, indent=1, default=str))

    try:
        if not (folder / "model.safetensors.index.json").is_file():
            ckpt = spawn(["--part", "write", *common], args.timeout, args.threads)
            if "error" in ckpt:
                print(f"writing the checkpoint failed: {ckpt['error']}", file=sys.stderr)
                return 1
            (work / "ckpt.json").write_text(json.dumps(ckpt))
        else:
            ckpt = json.loads((work / "ckpt.json").read_text())
        note(f"checkpoint: {ckpt['params'] / 1e9:.2f} B parameters in {folder}")
        cfg = work / "spike.json"
        cfg.write_text(json.dumps(SPIKE_CONFIG))
        for part in parts:
            if part == "convert-stream":
                rows[part] = spawn_cli_convert(folder, spiking, cfg, args.timeout, args.threads)
            elif part in ("fused", "faithful") and not (spiking / "manifest.json").is_file():
                rows[part] = {"error": "no spiking checkpoint (convert-stream did not run or failed)"}
            else:
                rows[part] = spawn(["--part", part, *common], args.timeout, args.threads)
            note(f"{part}: {json.dumps({k: v for k, v in rows[part].items() if k != 'tokens'})}")
            save_rows()
        if args.seven != "skip" and "convert-stream" in rows:
            rows["7b"] = estimate_7b(rows, args.small)
            if args.seven in ("measure", "auto") and (args.seven == "measure" or fits_7b(rows["7b"], work)):
                note("7B-shaped: writing the checkpoint and converting it (streaming)")
                measured = measure_7b(work, cfg, args)
                rows["7b"] = measured if "error" not in measured else {**rows["7b"], "note": rows["7b"].get(
                    "note", "") + f"; measuring failed: {measured['error']}"}
            save_rows()
        if "fused" in rows and "faithful" in rows and "tokens" in rows["fused"] and "tokens" in rows["faithful"]:
            same = rows["fused"]["tokens"] == rows["faithful"]["tokens"]
            note(f"fused and faithful generated {'the same' if same else 'DIFFERENT'} tokens")
            rows["faithful"]["same_tokens_as_fused"] = same
        print(table(rows, ckpt))
        print()
        for name, ratio, bound, ok in acceptance(rows):
            shown = "-" if ratio is None else f"{ratio:.2f}"
            print(f"- {name}: {shown} (bound {bound}) {'holds' if ok else 'n/a' if ok is None else 'FAILS'}")
        save_rows()
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
