"""The entry points the CLI wires: run a set of benchmarks on a model, print a table, write JSON."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from ..atomic import atomic_write_text
from ..errors import ConfigError, DataError
from . import loaders, minibench
from .example import BENCHMARKS, Example
from .harness import evaluate


def load_examples(bench_names: list[str] | tuple[str, ...] = BENCHMARKS, split: str = "test",
                  limit: int | None = None, data: str | Path | Mapping[str, str | Path] | None = None,
                  seed: int = 0, bad: list[DataError] | None = None) -> list[Example]:
    """Examples for ``bench_names``: the generated mini-benchmark when ``data`` is None, else the real
    datasets, from ``data[name]`` (a mapping) or ``data/<name>`` (one root folder).

    A record that cannot be read raises :class:`DataError` naming the file and record; with a ``bad`` list
    it is skipped instead, logged, and its error appended to ``bad``.
    """
    unknown = [b for b in bench_names if b not in BENCHMARKS]
    if unknown:
        raise ConfigError(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit={limit!r} is invalid; give None (all items) or an integer >= 1")
    if data is None:
        return minibench.build(split, n_per_task=limit or minibench.DEMO_N_PER_TASK, seed=seed, tasks=bench_names)
    out: list[Example] = []
    for name in bench_names:
        path = data[name] if isinstance(data, Mapping) else Path(data) / name
        out.extend(loaders.load(name, path, split=None if split == "test" else split, limit=limit, bad=bad))
    return out


def run_benchmark(model: torch.nn.Module, tokenizer_or_processor: Any,
                  bench_names: list[str] | tuple[str, ...] = BENCHMARKS, split: str = "test",
                  limit: int | None = None, data: str | Path | Mapping[str, str | Path] | None = None, *,
                  seed: int = 0, batch_size: int = 8, max_new_tokens: int = 16, progress: bool = True,
                  json_path: str | Path | None = None, log_samples: bool = False,
                  skip_bad: bool = False) -> dict[str, Any]:
    """Evaluate ``model`` on the named benchmarks and return :func:`evaluate`'s result dict.

    ``limit`` is items per benchmark (mini-benchmark default: the demo size). With ``json_path`` the result
    is also written there (by rank 0 only under torchrun). With ``skip_bad``, data records that cannot be
    read are skipped (each logged) and counted in ``meta["skipped_bad"]``, their errors in
    ``meta["bad_records"]``; without it the first one raises :class:`DataError`.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size={batch_size!r} is invalid; give an integer >= 1")
    bad: list[DataError] | None = [] if skip_bad else None
    examples = load_examples(bench_names, split, limit, data, seed, bad=bad)
    result = evaluate(model, tokenizer_or_processor, examples, batch_size=batch_size,
                      max_new_tokens=max_new_tokens, progress=progress, log_samples=log_samples)
    result["meta"].update({"source": "minibench" if data is None else str(data), "split": split, "seed": seed,
                           "benchmarks": list(bench_names)})
    if bad is not None:
        result["meta"].update({"skipped_bad": len(bad), "bad_records": [str(e) for e in bad]})
    if json_path is not None and int(os.environ.get("RANK", "0")) == 0:
        save_json(result, json_path)
    return result


def save_json(result: Mapping[str, Any], path: str | Path) -> Path:
    """Write a result dict as indented JSON, atomically: a uniquely named temporary file, then ``os.replace``
    (concurrent writers never share a temporary file; readers never see a torn one)."""
    return atomic_write_text(path, json.dumps(result, indent=1))


def _cell(task_result: Mapping[str, Any]) -> str:
    score = task_result["score"]
    return f"{score:.0f}" if task_result.get("unit") in ("/1000", "sum of subtasks") else f"{score:.2f}"


def format_table(results: Mapping[str, Any], tasks: list[str] | None = None) -> str:
    """A plain-text table: one row per setting, each benchmark on its own scale, then the average of the
    normalised scores (%). ``results`` is one result dict or a mapping ``setting name -> result dict``."""
    rows = {"model": results} if "tasks" in results else dict(results)
    if tasks is None:
        tasks = [t for t in BENCHMARKS if any(t in r["tasks"] for r in rows.values())]
    header = ["setting", *tasks, "avg %"]
    body = [[name, *(_cell(r["tasks"][t]) if t in r["tasks"] else "-" for t in tasks), f"{r['average']:.2f}"]
            for name, r in rows.items()]
    widths = [max(len(str(row[i])) for row in [header, *body]) for i in range(len(header))]
    line = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in body)])
