"""Results in lmms-eval's layout, so a spikemllm run can be diffed against an lmms-eval run file for file.

lmms-eval (``--output_path DIR --log_samples``) writes, under ``DIR/<model_name_sanitized>/``:

* ``<date>_results.json``: ``results`` (per task: ``alias`` and ``"<metric>,<filter>"`` /
  ``"<metric>_stderr,<filter>"`` values; the filter is ``none`` for these tasks), ``group_subtasks``,
  ``configs`` (the task YAML, resolved), ``versions``, ``n-shot``, ``higher_is_better``, ``n-samples``
  (``original`` and ``effective`` document counts), ``config`` (model, batch size, limit, seeds, ...),
  ``git_hash``, ``date``, ``task_hashes`` and the run tracker's fields (``model_source``, ``model_name``,
  ``model_name_sanitized``, ``start_time``, ``end_time``, ``total_evaluation_time_seconds``, ...);
* ``<date>_samples_<task>.jsonl``: one line per document with ``doc_id``, ``target``, ``filtered_resps``,
  ``doc_hash``, ``prompt_hash``, ``target_hash``, the task's per-sample metric values and ``input`` (the prompt).

The tasks are lmms-eval's ``textvqa_val``, ``docvqa_val``, ``scienceqa_img``, ``ocrbench`` and ``mme`` with their
metric names, including lmms-eval's own spelling ``mme_percetion_score``. Values follow lmms-eval's
aggregations: means in [0, 1] for TextVQA/DocVQA/ScienceQA, ``ocrbench_accuracy`` = correct / 1000 (the full
benchmark's count, so a ``--limit`` run reads low exactly as lmms-eval's does), MME perception and cognition as
sums over subtasks of acc + acc+ (each out of 200). Per-sample scores come from spikemllm's metrics
(:mod:`spikemllm.bench.metrics`); where those differ from lmms-eval's task code (ScienceQA accepts more answer
forms than lmms-eval's exact letter match; OCRBench keeps case for handwritten formulas) the task's
``configs[task]["spikemllm"]`` entry says so. A ``spikemllm`` top-level key keeps our own summary; readers of
lmms-eval files ignore unknown keys.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import ConfigError, OutputError
from .metrics.mme import COGNITION, PERCEPTION
from .metrics.textvqa import normalize_answer

__all__ = ["LmmsTask", "TASKS", "lmms_results", "sample_lines", "write_lmms_eval", "sanitize_model_name"]

FILTER = "none"  # lmms-eval's default filter name for generate_until tasks without a filter list
TASK_VERSION = "Yaml"  # ConfigurableTask.VERSION; these YAMLs give metadata as a list, so it is not overridden

Record = Mapping[str, Any]


@dataclass(frozen=True)
class LmmsTask:
    """One lmms-eval task: its name, its YAML's dataset and metric entries, and how our records map to it."""

    bench: str
    task: str
    dataset_path: str
    dataset_name: str | None
    test_split: str
    metrics: tuple[str, ...]  # metric_list names, in the YAML's order
    mean_metrics: tuple[str, ...]  # aggregated by mean (they get a standard error); the rest: custom
    per_sample: Callable[[Record], dict[str, Any]]  # lmms-eval's process_results, from our record
    notes: tuple[str, ...] = field(default=())


def _question_id(rec: Record) -> Any:
    uid = str(rec["uid"])
    return int(uid) if uid.isdigit() else uid


def _textvqa(rec: Record) -> dict[str, Any]:
    return {"exact_match": float(rec["score"]),
            "submission": {"question_id": _question_id(rec), "answer": normalize_answer(rec["prediction"])}}


def _ocrbench(rec: Record) -> dict[str, Any]:
    return {"ocrbench_accuracy": {"question_type": rec.get("category"), "score": int(round(rec["score"])),
                                  "prediction": rec["prediction"].lower().strip(),
                                  "ground_truth": rec.get("answers")}}


def _mme(rec: Record) -> dict[str, Any]:
    category = rec.get("category") or "unknown"
    image = rec.get("group") or rec["uid"]
    image = image[len(category) + 1:] if image.startswith(category + "/") else image
    key = "mme_percetion_score" if category in PERCEPTION else "mme_cognition_score"
    return {key: {"question_id": image, "category": category, "score": float(rec["score"])}}


TASKS: dict[str, LmmsTask] = {
    "textvqa": LmmsTask("textvqa", "textvqa_val", "lmms-lab/textvqa", None, "validation",
                        ("exact_match", "submission"), ("exact_match",), _textvqa),
    "docvqa": LmmsTask("docvqa", "docvqa_val", "lmms-lab/DocVQA", "DocVQA", "validation", ("anls",), ("anls",),
                       lambda r: {"anls": float(r["score"])}),
    "scienceqa": LmmsTask("scienceqa", "scienceqa_img", "lmms-lab/ScienceQA", "ScienceQA-IMG", "test",
                          ("exact_match",), ("exact_match",), lambda r: {"exact_match": float(r["score"])},
                          notes=("per-sample exact_match is spikemllm's letter extraction, which also accepts "
                                 "'(B) text', 'The answer is B' and the option text; lmms-eval accepts only 'B' "
                                 "and 'B. ...'",)),
    "ocrbench": LmmsTask("ocrbench", "ocrbench", "echo840/OCRBench", None, "test", ("ocrbench_accuracy",), (),
                         _ocrbench, notes=("ocrbench_accuracy = correct / 1000 as in lmms-eval, even when fewer "
                                           "than 1000 questions ran; handwritten formulas are matched "
                                           "case-sensitively",)),
    "mme": LmmsTask("mme", "mme", "lmms-lab/MME", None, "test", ("mme_percetion_score", "mme_cognition_score"), (),
                    _mme, notes=("'mme_percetion_score' is lmms-eval's own spelling, kept so files diff cleanly",)),
}


def _mean_stderr(values: list[float]) -> float | str:
    """lm-eval's ``mean_stderr``: sample standard deviation (n - 1) over sqrt(n); "N/A" for one value."""
    n = len(values)
    if n < 2:
        return "N/A"
    mu = sum(values) / n
    return math.sqrt(sum((v - mu) ** 2 for v in values) / (n - 1)) / math.sqrt(n)


def _mme_total(items: list[dict[str, Any]]) -> float:
    """Sum over categories of the per-image mean of acc + acc+ (both in %), as lmms-eval aggregates MME."""
    by_cat: dict[str, dict[Any, list[float]]] = {}
    for it in items:
        by_cat.setdefault(it["category"], {}).setdefault(it["question_id"], []).append(it["score"])
    total = 0.0
    for images in by_cat.values():
        per_image = [100.0 * sum(s) / len(s) + 100.0 * all(x == 1.0 for x in s) for s in images.values()]
        total += sum(per_image) / len(per_image)
    return total


def _aggregate(spec: LmmsTask, samples: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"alias": spec.task}
    for metric in spec.metrics:
        items = [s[metric] for s in samples if metric in s]
        if not items:
            continue  # lmms-eval reports only metrics that received values (MME without cognition items)
        if metric in spec.mean_metrics:
            value: Any = sum(items) / len(items)
            stderr: Any = _mean_stderr([float(x) for x in items])
        elif metric == "ocrbench_accuracy":
            value, stderr = sum(x["score"] for x in items) / 1000.0, "N/A"
        elif metric.startswith("mme_"):
            value, stderr = _mme_total(items), "N/A"
        else:  # textvqa "submission": lmms-eval writes a submission file and reports no value
            value, stderr = None, "N/A"
        out[f"{metric},{FILTER}"] = value
        out[f"{metric}_stderr,{FILTER}"] = stderr
    return out


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _target(rec: Record) -> str:
    answers = list(rec.get("answers") or [])
    return answers[0] if rec["task"] in ("scienceqa", "mme") and answers else str(answers)


def sample_lines(spec: LmmsTask, records: list[Record]) -> list[dict[str, Any]]:
    """The per-sample entries of one task, in lmms-eval's key order."""
    out = []
    for doc_id, rec in enumerate(records):
        if "input" not in rec:
            raise ConfigError("per-sample logs need the prompts: evaluate with log_samples=True "
                              "(spikemllm eval --log-samples)")
        target = _target(rec)
        entry: dict[str, Any] = {"doc_id": doc_id, "target": target, "filtered_resps": [rec["prediction"]],
                                 "doc_hash": _hash(json.dumps(rec.get("doc", {}), indent=2, ensure_ascii=False)),
                                 "prompt_hash": _hash(rec["input"]), "target_hash": _hash(str(target))}
        entry.update(spec.per_sample(rec))
        entry["input"] = rec["input"]
        out.append(entry)
    return out


def _task_config(spec: LmmsTask, meta: Mapping[str, Any]) -> dict[str, Any]:
    metric_list = [{"metric": m, "aggregation": "mean" if m in spec.mean_metrics else "custom",
                    "higher_is_better": True} for m in spec.metrics]
    return {"task": spec.task, "dataset_path": spec.dataset_path,
            **({"dataset_name": spec.dataset_name} if spec.dataset_name else {}),
            "test_split": spec.test_split, "output_type": "generate_until", "num_fewshot": 0,
            "generation_kwargs": {"max_new_tokens": meta.get("max_new_tokens"), "temperature": 0,
                                  "do_sample": False},
            "metric_list": metric_list, "metadata": [{"version": 0.0}],
            "spikemllm": {"benchmark": spec.bench, "source": meta.get("source"),
                          "metric": f"spikemllm.bench.metrics.{spec.bench}", "notes": list(spec.notes)}}


def sanitize_model_name(name: str) -> str:
    """lmms-eval's folder name for a model: its last two path parts, with ``"<>:/|\\?*[]`` runs as ``__``."""
    parts = str(name).rstrip("/").split("/")
    return re.sub(r"[\"<>:/|\\?*\[\]]+", "__", "/".join(parts[-2:]))


def _git_hash() -> str | None:
    try:
        out = subprocess.run(["git", "describe", "--always"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return (out.stdout.strip() or None) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def lmms_results(result: Mapping[str, Any], *, model: str, model_args: str = "", limit: int | None = None,
                 batch_size: int | None = None, device: str | None = None, seed: int = 0,
                 original: Mapping[str, int] | None = None, log_samples: bool = False,
                 date: str | None = None, start_time: float | None = None
                 ) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """``(results_json, samples_by_task)`` in lmms-eval's layout from a :func:`~spikemllm.bench.evaluate` result.

    ``original`` gives each benchmark's full document count where known (lmms-eval's ``n-samples.original``);
    without it the evaluated count is used for both. ``samples_by_task`` is empty unless ``log_samples``.
    """
    meta = dict(result.get("meta", {}))
    by_task: dict[str, list[Record]] = {}
    for rec in result.get("records", []):
        by_task.setdefault(rec["task"], []).append(rec)
    unknown = [t for t in by_task if t not in TASKS]
    if unknown:
        raise ConfigError(f"no lmms-eval task for {unknown}; known: {sorted(TASKS)}")
    results, configs, samples, n_samples = {}, {}, {}, {}
    for bench, recs in by_task.items():
        spec = TASKS[bench]
        scored = sample_lines(spec, recs) if log_samples else [spec.per_sample(r) for r in recs]
        results[spec.task] = _aggregate(spec, scored)
        configs[spec.task] = _task_config(spec, meta)
        n = len(recs)
        n_samples[spec.task] = {"original": int((original or {}).get(bench, n)), "effective": n}
        if log_samples:
            samples[spec.task] = scored
    names = list(results)
    end = time.perf_counter()
    start = start_time if start_time is not None else end - float(meta.get("seconds", 0.0))
    out: dict[str, Any] = {
        "results": results,
        "group_subtasks": {t: [] for t in reversed(names)},
        "configs": dict(sorted(configs.items())),
        "versions": {t: TASK_VERSION for t in sorted(names)},
        "n-shot": {t: 0 for t in sorted(names)},
        "higher_is_better": {t: {m: True for m in TASKS[_bench_of(t)].metrics} for t in sorted(names)},
        "n-samples": n_samples,
        "config": {"model": "spikemllm", "model_args": model_args or f"pretrained={model}",
                   "batch_size": batch_size if batch_size is not None else meta.get("batch_size"),
                   "batch_sizes": [], "device": device, "use_cache": None, "limit": limit,
                   "bootstrap_iters": 100000, "gen_kwargs": "", "random_seed": seed, "numpy_seed": seed,
                   "torch_seed": seed, "fewshot_seed": seed},
        "git_hash": _git_hash(),
        "date": date or datetime.now().strftime("%Y%m%d_%H%M%S"),
        "task_hashes": {t: _hash("".join(f"sample_{i}" + s["doc_hash"] for i, s in enumerate(v)))
                        for t, v in samples.items()},
        "model_source": "spikemllm", "model_name": model, "model_name_sanitized": sanitize_model_name(model),
        "system_instruction": None, "system_instruction_sha": None, "fewshot_as_multiturn": False,
        "chat_template": None, "chat_template_sha": None, "start_time": start, "end_time": end,
        "total_evaluation_time_seconds": str(end - start),
        "spikemllm": {k: result[k] for k in ("tasks", "average", "cost", "meta") if k in result},
    }
    return out, samples


def _bench_of(task: str) -> str:
    return next(b for b, s in TASKS.items() if s.task == task)


def write_lmms_eval(result: Mapping[str, Any], output_path: str | Path, *, model: str, log_samples: bool = False,
                    **kwargs: Any) -> list[Path]:
    """Write ``<output_path>/<model_name_sanitized>/<date>_results.json`` (and, with ``log_samples``,
    ``<date>_samples_<task>.jsonl`` per task) as lmms-eval does; returns the written paths, results first.

    Files are written to a temporary name and renamed, and never replace a file of an earlier run: two runs
    in the same second get an :class:`~spikemllm.errors.OutputError` rather than mixed samples (lmms-eval
    appends to an existing samples file).
    """
    res, samples = lmms_results(result, model=model, log_samples=log_samples, **kwargs)
    folder = Path(output_path) / res["model_name_sanitized"]
    date_id = res["date"].replace(":", "-")
    targets = [folder / f"{date_id}_results.json"] + [folder / f"{date_id}_samples_{t}.jsonl" for t in samples]
    clash = [p for p in targets if p.exists()]
    if clash:
        raise OutputError(f"{clash[0]} already exists (a run in the same second?); wait a second or choose "
                          "another --output-path")
    folder.mkdir(parents=True, exist_ok=True)
    texts = [json.dumps(res, indent=2, ensure_ascii=False, default=str)]
    texts += ["".join(json.dumps(s, ensure_ascii=False, default=str) + "\n" for s in lines)
              for lines in samples.values()]
    from ..atomic import atomic_write_text

    for path, text in zip(targets, texts):
        atomic_write_text(path, text)  # a unique temporary name, then os.replace
    return targets
