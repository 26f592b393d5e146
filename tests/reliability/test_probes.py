"""Issue 15's bad inputs and faults, one test each: exit code 2 (or a typed SpikeMLLMError), one line naming
the file, no traceback, and no file lost or changed outside the target (reliability_probes.py)."""
from __future__ import annotations

import pytest

from reliability_harness import run_probe
from reliability_inputs import make_inputs
from reliability_probes import PROBES


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_inputs(tmp_path_factory.mktemp("inputs"))


def test_the_table_covers_every_area_of_the_issue():
    areas = {p.area for p in PROBES}
    assert areas == {"overwrite", "model", "atomic", "concurrency", "data", "manifest", "minor"}
    assert len({p.name for p in PROBES}) == len(PROBES) >= 30


@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
def test_probe(probe, inputs, tmp_path):
    outcome = run_probe(probe, inputs, tmp_path / "work")
    assert outcome.ok, outcome.got
