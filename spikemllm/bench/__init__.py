"""Evaluation: the five benchmarks' metrics, loaders for their real layouts, the generated
mini-benchmark, and a harness that runs any generating model (float or spiking) on them."""
from __future__ import annotations

from . import loaders, metrics, minibench
from .example import BENCHMARKS, Example
from .harness import evaluate
from .runner import format_table, load_examples, run_benchmark, save_json

__all__ = ["BENCHMARKS", "Example", "evaluate", "format_table", "load_examples", "loaders", "metrics",
           "minibench", "run_benchmark", "save_json"]
