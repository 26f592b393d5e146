"""The generated mini-benchmark is deterministic, splits are disjoint, and gold answers are consistent
with what was drawn."""
from __future__ import annotations

import numpy as np
import pytest

from spikemllm.bench import minibench
from spikemllm.bench.example import BENCHMARKS
from spikemllm.bench.metrics import get_metric
from spikemllm.bench.minibench import ocrbench_like, render
from spikemllm.bench.prompts import option_letters


def _fingerprint(examples):
    return [(e.uid, e.question, tuple(e.answers), np.asarray(e.image).tobytes()) for e in examples]


def test_same_seed_same_items():
    assert _fingerprint(minibench.build("test", 6, seed=3)) == _fingerprint(minibench.build("test", 6, seed=3))


def test_seed_and_split_change_items():
    base = _fingerprint(minibench.build("test", 6, seed=0))
    assert base != _fingerprint(minibench.build("test", 6, seed=1))
    train_images = {f[3] for f in _fingerprint(minibench.build("train", 6, seed=0))}
    assert not train_images & {f[3] for f in base}


def test_tasks_are_independent_streams():
    """Adding a task or changing the selection never changes another task's items."""
    alone = _fingerprint(minibench.build("test", 4, tasks=["ocrbench"]))
    together = _fingerprint([e for e in minibench.build("test", 4) if e.task == "ocrbench"])
    assert alone == together


def test_counts_and_image_size():
    ex = minibench.build("test", 6)
    assert [sum(e.task == t for e in ex) for t in BENCHMARKS] == [6] * 5
    assert all(e.image.size == (96, 96) and e.image.mode == "RGB" for e in ex)
    assert len({e.uid for e in ex}) == len(ex)


def test_digit_scans_disjoint_between_splits():
    train, test = set(ocrbench_like.digit_pool("train")), set(ocrbench_like.digit_pool("test"))
    assert not train & test
    for e in minibench.build("test", 20, tasks=["ocrbench"]):
        assert set(e.meta["digit_indices"]) <= test
        assert 2 <= len(e.answers[0]) <= 4 and e.answers[0].isdigit()


def test_scienceqa_letter_points_at_correct_option():
    for e in minibench.build("test", 20, tasks=["scienceqa"]):
        letters = option_letters(len(e.choices))
        assert e.choices[letters.index(e.answers[0])] == e.meta["answer_text"]
        assert len(set(e.choices)) == len(e.choices) == 3


def test_mme_pairs_one_yes_one_no():
    ex = minibench.build("test", 16, tasks=["mme"])
    groups: dict[str, list[str]] = {}
    for e in ex:
        groups.setdefault(e.group, []).append(e.answers[0])
        assert e.question.endswith("Please answer yes or no.")
    assert all(sorted(v) == ["No", "Yes"] for v in groups.values())
    assert {e.category for e in ex} == {"existence", "count", "position", "color"}


def test_gold_answers_score_full_marks():
    ex = minibench.build("test", 8)
    for e in ex:
        gold = e.meta.get("word", e.answers[0])
        assert get_metric(e.task).score(gold, e) == 1.0


def test_builds_without_dejavu(monkeypatch, tmp_path):
    """Falls back to PIL's default font when fonts-dejavu-core is absent."""
    monkeypatch.setattr(render, "DEJAVU_DIR", tmp_path / "missing")
    render.load_font.cache_clear()
    try:
        ex = minibench.build("test", 3, tasks=["textvqa", "docvqa"])
        assert len(ex) == 6 and render.available_fonts() == []
    finally:
        render.load_font.cache_clear()


def test_unknown_split_or_task():
    with pytest.raises(ValueError, match="split"):
        minibench.build("dev", 2)
    with pytest.raises(ValueError, match="choose from"):
        minibench.build("test", 2, tasks=["mmmu"])


def _tagged(e):
    return {i: t for i, t in enumerate(e.meta["patch_tags"]) if t}


def test_patch_tags_say_what_each_cell_shows():
    """The per-patch tags (training scaffolding for the bundled model) agree with the gold answers: OCR
    cells spell the digits left to right, the asked form row holds the value, shapes are one cell each."""
    ex = minibench.build("test", 12)
    assert all(len(e.meta["patch_tags"]) == render.GRID_CELLS for e in ex)
    for e in ex:
        cells = _tagged(e)
        if e.task == "ocrbench":
            assert "".join(cells[i][0] for i in sorted(cells)) == e.answers[0]
            assert len({i // 6 for i in cells}) == 1  # one row
        elif e.task == "docvqa":
            key = e.question.split()[-1].rstrip("?")
            rows = {i // 6 for i, t in cells.items() if t == (key,)}
            assert len(rows) == 1
            (row,) = rows
            assert "".join(cells[row * 6 + c][0] for c in (3, 4, 5)) == e.answers[0]
            assert all(cells[row * 6 + c][1] == key for c in (3, 4, 5))
        elif e.task == "textvqa":
            letters = sorted(t for tags in cells.values() for t in tags)
            assert letters == sorted(f"char:{ch}" for ch in e.meta["word"])
        else:
            shapes = e.meta["caption"].split(", ")
            assert sorted(" ".join(t[:3]) for t in cells.values()) == sorted(shapes)


def test_patch_tags_mark_the_right_pixels():
    """A cell tagged with a shape differs from the background; an untagged OCR cell is background only."""
    for e in minibench.build("test", 8, tasks=["scienceqa", "ocrbench"]):
        arr = np.asarray(e.image, dtype=np.float32)
        for i, t in enumerate(e.meta["patch_tags"]):
            r, c = divmod(i, 6)
            cell = arr[16 * r:16 * r + 16, 16 * c:16 * c + 16]
            if t:
                assert cell.std() > 20, (e.uid, i, t)
            elif e.task == "ocrbench":
                assert cell.std() < 20, (e.uid, i)
