"""TextVQA / VQA accuracy (the official VQA evaluation).

Each question has 10 human answers. After normalising both the prediction and the answers (punctuation,
articles, number words, contractions), the prediction scores ``min(#matching answers / 3, 1)`` against each
of the 10 subsets that leave one annotator out, and the 10 values are averaged. So 3+ agreeing annotators
give full credit, 2 give 0.6 (not 2/3), 1 gives 0.3.

Both the prediction and every gold answer are always normalised (as lmms-eval does); the original script
skips punctuation handling when all ten answers are identical, which differs only for gold strings that
carry punctuation.
"""
from __future__ import annotations

import re

from ..example import Example
from .base import SimpleMetric

NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = {"a", "an", "the"}
# Apostrophe-less spellings mapped to the official form (a subset of the VQA table covering common cases).
CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hes": "he's", "howd": "how'd", "howll": "how'll", "hows": "how's",
    "Id": "I'd", "id've": "i'd've", "Im": "I'm", "im": "i'm", "Ive": "I've", "ive": "i've", "isnt": "isn't",
    "itd": "it'd", "itll": "it'll", "lets": "let's", "mightnt": "mightn't", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "shant": "shan't", "shed": "she'd",
    "shes": "she's", "shouldve": "should've", "shouldnt": "shouldn't", "somebodys": "somebody's",
    "someones": "someone's", "somethings": "something's", "thats": "that's", "thered": "there'd",
    "theres": "there's", "theyd": "they'd", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "weve": "we've", "werent": "weren't",
    "whatll": "what'll", "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's",
    "whered": "where'd", "wheres": "where's", "whereve": "where've", "whod": "who'd", "wholl": "who'll",
    "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're", "whys": "why's",
    "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't", "yall": "y'all", "youd": "you'd",
    "youll": "you'll", "youre": "you're", "youve": "you've",
}
PUNCTUATION = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",",
               "?", "!"]
_COMMA_IN_NUMBER = re.compile(r"(\d)(,)(\d)")
_PERIOD_NOT_DECIMAL = re.compile(r"(?<!\d)\.(?!\d)")


def _strip_punctuation(text: str) -> str:
    """Official rule: a mark touching a space (or any text with a digit-comma-digit) is deleted, otherwise
    it becomes a space; periods are removed unless they are decimal points."""
    out = text
    for p in PUNCTUATION:
        if (p + " " in text or " " + p in text) or _COMMA_IN_NUMBER.search(text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_NOT_DECIMAL.sub("", out)


def _digits_articles(text: str) -> str:
    words = []
    for w in text.lower().split():
        w = NUMBER_WORDS.get(w, w)
        if w not in ARTICLES:
            words.append(CONTRACTIONS.get(w, w))
    return " ".join(words)


def normalize_answer(text: str) -> str:
    """The VQA answer normalisation applied to predictions and gold answers alike."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return _digits_articles(_strip_punctuation(text))


def vqa_accuracy(prediction: str, answers: list[str]) -> float:
    """Mean over leave-one-annotator-out subsets of ``min(#matches / 3, 1)``."""
    pred = normalize_answer(prediction)
    gold = [normalize_answer(a) for a in answers]
    if len(gold) == 1:
        return float(pred == gold[0])
    accs = []
    for i in range(len(gold)):
        matches = sum(1 for j, g in enumerate(gold) if j != i and g == pred)
        accs.append(min(matches / 3.0, 1.0))
    return sum(accs) / len(accs)


def _score(prediction: str, example: Example) -> float:
    return vqa_accuracy(prediction, example.answers)


METRIC = SimpleMetric("textvqa", _score)
