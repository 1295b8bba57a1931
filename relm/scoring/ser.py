"""Speech emotion recognition: parse free-text answers, compute UA / WA / macro-F1.

UA (unweighted accuracy) is the mean per-class recall over the classes present in the
gold labels; WA is plain accuracy. An answer that names no class, or names several, is
its own outcome (`UNPARSEABLE`): counted, scored as wrong, never mapped to a class.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score

from relm.data.schema import LABELS
from relm.errors import RelmError

UNPARSEABLE = "unparseable"

# Words -> label. Matched on whole words, case-insensitive.
SYNONYMS = {
    "neutral": ["neutral", "neutrality", "calm", "no emotion", "emotionless", "indifferent"],
    "happy": [
        "happy",
        "happiness",
        "joy",
        "joyful",
        "excited",
        "excitement",
        "cheerful",
        "glad",
        "delighted",
        "pleased",
        "hap",
    ],
    "angry": ["angry", "anger", "angered", "furious", "mad", "annoyed", "frustrated", "rage", "irritated", "ang"],
    "sad": ["sad", "sadness", "unhappy", "sorrow", "sorrowful", "depressed", "upset", "grief", "melancholy"],
    "surprise": ["surprise", "surprised", "surprising", "astonished", "amazed", "shocked", "sur"],
}
_PATTERNS = [
    (label, re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b", re.IGNORECASE))
    for label, words in SYNONYMS.items()
]
# A negation in the same clause, at most two words before the mention ("doesn't sound angry", "not at all
# happy", "neither happy nor sad"); "but", "and", "or" and punctuation end its scope ("not happy but sad").
NEGATED = re.compile(
    r"(?:\b(?:not|no|never|neither|nor|without|hardly)|n't)\s+(?:(?!(?:but|and|or)\b)\w+\s+){0,2}$", re.IGNORECASE
)
# The class names listed as options ("neutral, sad, angry, happy, or surprise"): an echo of the prompt.
_NAME = r"(?:neutral|sad|angry|happy|surprised?)"
_OPTION_LIST = re.compile(rf"\b{_NAME}(?:\s*(?:,|/|\bor\b|\band\b)\s*(?:or\s+|and\s+)?{_NAME}\b){{2,}}", re.IGNORECASE)


def parse_emotion(answer: str, labels: tuple[str, ...] = LABELS) -> str:
    """Map a generated answer to one label of `labels`, or `UNPARSEABLE`.

    A listing of the options (three or more class names in a row) is an echo of the prompt and
    is ignored, so "Angry. The options were neutral, sad, angry, happy, or surprise." is angry.
    Negated mentions ("doesn't sound angry", "not happy") are ignored. Of what remains, the
    class named first wins, unless more than two classes are named (it hedged).
    """
    text = _OPTION_LIST.sub(lambda m: " " * len(m.group()), str(answer or ""))
    hits: list[tuple[int, str]] = []
    for label, pattern in _PATTERNS:
        if label not in labels:
            continue
        for m in pattern.finditer(text):
            if not NEGATED.search(text[: m.start()]):
                hits.append((m.start(), label))
                break
    distinct = {label for _, label in hits}
    if not distinct or len(distinct) > 2:
        return UNPARSEABLE
    return min(hits)[1]


@dataclass
class SERScores:
    ua: float
    wa: float
    macro_f1: float
    n: int
    n_unparseable: int
    confusion: list[list[int]]  # rows: gold labels; columns: labels + unparseable
    labels: tuple[str, ...]

    def as_dict(self) -> dict:
        return {
            "ua": self.ua,
            "wa": self.wa,
            "macro_f1": self.macro_f1,
            "n": self.n,
            "n_unparseable": self.n_unparseable,
            "confusion": self.confusion,
            "labels": list(self.labels),
        }


def ser_scores(gold: list[str], pred: list[str], labels: tuple[str, ...] = LABELS) -> SERScores:
    """UA (macro recall over gold classes), WA, macro-F1 and the confusion matrix."""
    if len(gold) != len(pred):
        raise RelmError(f"SER scoring: {len(gold)} gold labels but {len(pred)} predictions")
    unknown = sorted(set(gold) - set(labels))
    if unknown:
        raise RelmError(f"SER scoring: gold label(s) {unknown} outside the class set {list(labels)}")
    bad = sorted(set(pred) - set(labels) - {UNPARSEABLE})
    if bad:
        raise RelmError(f"SER scoring: prediction(s) {bad} are neither labels nor {UNPARSEABLE!r}")
    if not gold:
        return SERScores(float("nan"), float("nan"), float("nan"), 0, 0, [], labels)
    g, p = np.asarray(gold), np.asarray(pred)
    present = [lb for lb in labels if lb in set(gold)]
    columns = list(labels) + [UNPARSEABLE]
    return SERScores(
        ua=unweighted_accuracy(g, p),
        wa=float(np.mean(g == p)),
        macro_f1=float(f1_score(g, p, labels=present, average="macro", zero_division=0)),
        n=len(g),
        n_unparseable=int(np.sum(p == UNPARSEABLE)),
        confusion=confusion_matrix(g, p, labels=columns)[: len(labels)].tolist(),
        labels=tuple(labels),
    )


def unweighted_accuracy(gold, pred) -> float:
    """Mean per-class recall over the classes present in `gold`."""
    gold, pred = np.asarray(gold), np.asarray(pred)
    return float(ua_matrix(gold, (pred == gold)[None])[0])


def ua_matrix(gold: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """UA of every row of a (k, n) matrix of per-utterance correctness, vectorised for resampling.

    `correct` is 0/1, or the share of seeds that answered an utterance correctly; `gold` is one
    (n,) vector shared by all rows, or a (k, n) matrix (a bootstrap resample per row). A class
    absent from a row's gold contributes nothing to that row's mean.
    """
    gold = np.broadcast_to(gold, correct.shape)
    recalls = []
    for c in np.unique(gold):
        in_class = gold == c
        with np.errstate(invalid="ignore", divide="ignore"):
            recalls.append((correct * in_class).sum(axis=1) / in_class.sum(axis=1))
    return np.nanmean(np.vstack(recalls), axis=0)
