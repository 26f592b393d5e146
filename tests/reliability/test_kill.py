"""SIGKILL at >= 20 points spread over an overwriting save: the previous checkpoint (or, once the new one is
renamed in, the new one) always loads bit-identically, and no temporary folder survives the next save."""
from __future__ import annotations

from reliability_kill import kill_campaign


def test_sigkill_anywhere_in_save_loses_nothing(tmp_path):
    r = kill_campaign(tmp_path, points=24)
    events = [at for kind, at in r["points"] if kind == "e"]
    assert r["tried"] >= 24 and r["event_kills"] == len(events) >= 20, r
    assert r["failures"] == [] and r["loaded_ok"] == r["tried"], r["failures"]
    assert r["leftover_after_next_save"] == 0
    # the points cover the whole save: the first event, the rename that publishes, the last event
    assert events[0] == 1 and events[-1] == r["events"]
    assert r["rename_in"] in events and any(at > r["rename_in"] for at in events)
    # a kill between the two renames was repaired by load (the old checkpoint put back), others cleaned up
    assert r["restored"] >= 1 and r["removed"] >= 10
