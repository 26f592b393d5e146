"""Metric values checked against hand-computed cases from each benchmark's official definition."""
from __future__ import annotations

import pytest
from PIL import Image

from spikemllm.bench.example import Example
from spikemllm.bench.metrics import Record, get_metric
from spikemllm.bench.metrics.docvqa import anls, levenshtein
from spikemllm.bench.metrics.mme import parse_yes_no
from spikemllm.bench.metrics.ocrbench import HME_CATEGORY, ocrbench_match
from spikemllm.bench.metrics.scienceqa import extract_letter
from spikemllm.bench.metrics.textvqa import normalize_answer, vqa_accuracy

IMG = Image.new("RGB", (4, 4))


# ---- TextVQA -------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, norm", [
    ("The Cat!", "cat"),           # article dropped, "!" becomes a space, lower-cased
    ("two", "2"),                  # number word
    ("none", "0"),
    ("dont", "don't"),             # contraction restored
    ("1,000", "1000"),             # comma inside a number removed
    ("3.5", "3.5"),                # decimal point kept
    ("yes.", "yes"),               # trailing period removed
    ("coca-cola", "coca cola"),    # hyphen not touching a space becomes a space
    ("a - b", "b"),                # hyphen touching a space is deleted; "a" is an article
])
def test_vqa_normalisation(raw, norm):
    assert normalize_answer(raw) == norm


@pytest.mark.parametrize("matches, expected", [
    (0, 0.0),
    (1, 0.3),    # 9 subsets containing the match: 1/3 each; the subset without it: 0 -> 3/10
    (2, 0.6),    # 2 subsets at 1/3, 8 at 2/3 -> 18/30
    (3, 0.9),    # 3 subsets at 2/3, 7 at 1 -> 9/10
    (4, 1.0),
    (10, 1.0),
])
def test_vqa_accuracy_leave_one_out(matches, expected):
    answers = ["cat"] * matches + ["dog"] * (10 - matches)
    assert vqa_accuracy("Cat", answers) == pytest.approx(expected)


def test_vqa_accuracy_normalises_gold_and_prediction():
    assert vqa_accuracy("the two", ["2"] * 10) == 1.0
    assert vqa_accuracy("three", ["2"] * 10) == 0.0


# ---- DocVQA --------------------------------------------------------------------------------------
def test_levenshtein():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3
    assert levenshtein("abc", "abc") == 0


@pytest.mark.parametrize("pred, answers, expected", [
    ("417", ["417"], 1.0),
    ("418", ["417"], 2 / 3),             # NL = 1/3 < 0.5
    ("4", ["417"], 0.0),                 # NL = 2/3 >= 0.5 -> 0
    ("ab", ["abcd"], 0.0),               # NL = 0.5 exactly is not below tau -> 0
    ("  Hello   World ", ["hello world"], 1.0),
    ("abcx", ["zzzz", "abcd"], 0.75),    # best over gold answers
])
def test_anls(pred, answers, expected):
    assert anls(pred, answers) == pytest.approx(expected)


# ---- ScienceQA -----------------------------------------------------------------------------------
CHOICES = ["red", "green", "blue"]


@pytest.mark.parametrize("text, letter", [
    ("B", "B"), ("B.", "B"), ("(C) blue", "C"), ("A: red", "A"), ("The answer is C.", "C"),
    ("Answer: (B)", "B"), ("green", "B"), ("Blue.", "C"), ("I would pick option A", "A"),
    ("D", None), ("purple", None), ("", None),
])
def test_extract_letter(text, letter):
    assert extract_letter(text, CHOICES) == letter


def test_scienceqa_accuracy():
    ex = Example("q", "scienceqa", IMG, "What color?", ["B"], choices=CHOICES)
    m = get_metric("scienceqa")
    assert m.score("The answer is B.", ex) == 1.0
    assert m.score("red", ex) == 0.0
    recs = [Record("a", "scienceqa", "", s) for s in (1.0, 0.0, 1.0, 1.0)]
    assert m.aggregate(recs)["score"] == pytest.approx(75.0)


# ---- OCRBench ------------------------------------------------------------------------------------
def test_ocrbench_containment_rules():
    assert ocrbench_match("The text is HELLO.", ["hello"], "Regular Text Recognition")
    assert not ocrbench_match("hell", ["hello"], "Regular Text Recognition")
    assert ocrbench_match("  x ^ { 2 }", ["x^{2}"], HME_CATEGORY)            # spaces removed
    assert not ocrbench_match("X^{2}", ["x^{2}"], HME_CATEGORY)              # case kept for LaTeX
    assert ocrbench_match("X^{2}", ["x^{2}"], "Regular Text Recognition")     # other categories lower-case
    assert ocrbench_match("line one line two", ["line one\nline two"], "Doc-oriented VQA")


def test_ocrbench_1000_point_scale():
    m = get_metric("ocrbench")
    recs = [Record(str(i), "ocrbench", "", s, category="Digit String Recognition") for i, s in
            enumerate([1.0, 1.0, 0.0, 1.0])]
    agg = m.aggregate(recs)
    assert agg["score"] == pytest.approx(750.0)
    assert agg["normalized"] == pytest.approx(75.0)
    assert agg["per_category"] == {"Text Recognition": 3.0}


# ---- MME -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, parsed", [
    ("Yes", "yes"), ("yes.", "yes"), ("No, it is not.", "no"), ("Yes, there is", "yes"), ("I think yes", "other"),
])
def test_mme_parse(text, parsed):
    assert parse_yes_no(text) == parsed


def test_mme_acc_plus_and_totals():
    m = get_metric("mme")
    recs = [
        Record("1", "mme", "", 1.0, "existence", "img1"), Record("2", "mme", "", 1.0, "existence", "img1"),
        Record("3", "mme", "", 1.0, "existence", "img2"), Record("4", "mme", "", 0.0, "existence", "img2"),
        Record("5", "mme", "", 1.0, "code_reasoning", "img3"), Record("6", "mme", "", 1.0, "code_reasoning", "img3"),
    ]
    agg = m.aggregate(recs)
    ex = agg["per_category"]["existence"]
    assert ex["acc"] == pytest.approx(75.0) and ex["acc_plus"] == pytest.approx(50.0) and ex["score"] == 125.0
    assert agg["perception"] == pytest.approx(125.0)
    assert agg["cognition"] == pytest.approx(200.0)
    assert agg["score"] == pytest.approx(325.0)
    assert agg["normalized"] == pytest.approx(100 * 325 / 400)


def test_mme_score_per_example():
    ex = Example("q", "mme", IMG, "Is there a cat? Please answer yes or no.", ["No"], category="existence")
    assert get_metric("mme").score("no", ex) == 1.0
    assert get_metric("mme").score("Yes", ex) == 0.0


def test_unknown_metric_names_choices():
    with pytest.raises(KeyError, match="known"):
        get_metric("mmmu")
