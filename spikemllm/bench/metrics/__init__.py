"""The five benchmark metrics, one module each, looked up by benchmark name."""
from __future__ import annotations

from .base import Metric, Record
from .docvqa import METRIC as DOCVQA
from .mme import METRIC as MME
from .ocrbench import METRIC as OCRBENCH
from .scienceqa import METRIC as SCIENCEQA
from .textvqa import METRIC as TEXTVQA

METRICS: dict[str, Metric] = {"textvqa": TEXTVQA, "docvqa": DOCVQA, "ocrbench": OCRBENCH,
                              "scienceqa": SCIENCEQA, "mme": MME}


def get_metric(task: str) -> Metric:
    """The metric for ``task``; raises with the valid names when it is unknown."""
    try:
        return METRICS[task]
    except KeyError:
        raise KeyError(f"no metric for {task!r}; known: {sorted(METRICS)}") from None


__all__ = ["METRICS", "Metric", "Record", "get_metric"]
