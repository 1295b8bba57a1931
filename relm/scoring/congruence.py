"""Emotion congruence: which emotion does a reply attribute to the speaker, or react to, and is it the right one?

EPITOME cannot tell a warm reply to the wrong emotion from a warm reply to the right one; a system
that hears the emotion should name the right one. `detect_emotion` is lexicon- and rule-based,
built on the SER parser's synonym table plus the words and stock phrases replies use ("sorry for
your loss" = sad, "congratulations" = happy, "no wonder you are angry" = angry). Mentions in the
scope of a negation ("you don't sound angry") are ignored, as in the SER parser. The emotion named
first wins; a reply that names none gets None.

Per reply: `congruent` (the detected emotion is the gold one; for a neutral speaker, naming no
emotion is congruent too), `incongruent` (an emotion other than the gold one is named) and
`emotion_named`. The detector's accuracy on hand-labelled replies is measured in the tests
(`tests/data/congruence_gold.csv`) and recorded in results.json.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from relm.data.schema import LABELS
from relm.scoring.ser import NEGATED, SYNONYMS

NEUTRAL = "neutral"
# Words and phrases replies use, beyond the SER answer vocabulary (matched on whole words, case-insensitive).
REPLY_WORDS = {
    "neutral": [],
    "happy": [
        "thrilled",
        "congratulations",
        "congrats",
        "wonderful",
        "great news",
        "good news",
        "fantastic",
        "so happy for you",
        "happy for you",
        "proud",
        "exciting",
        "celebrate",
        "yay",
        "awesome",
        "lovely",
        "amazing news",
        "brilliant",
        "grateful",
        "funny",
        "thrilling",
        "hilarious",
    ],
    "angry": [
        "livid",
        "outraged",
        "outrageous",
        "frustrating",
        "infuriating",
        "annoying",
        "irritating",
        "unfair",
        "ridiculous",
        "how dare",
        "fed up",
        "furious",
        "maddening",
        "unacceptable",
    ],
    "sad": [
        "heartbroken",
        "heartbreaking",
        "sorry to hear",
        "sorry for your loss",
        "so sorry",
        "sorry you",
        "devastating",
        "devastated",
        "sounds hard",
        "so hard",
        "really hard",
        "unfortunate",
        "hurt",
        "painful",
        "lonely",
        "worrying",
        "worried",
        "disappointing",
        "disappointed",
        "tough time",
        "rough",
    ],
    "surprise": [
        "astonishing",
        "unexpected",
        "wow",
        "no way",
        "can't believe",
        "cannot believe",
        "shocking",
        "what a surprise",
        "out of nowhere",
        "didn't see that coming",
        "whoa",
        "shock",
        "did not expect",
        "didn't expect",
    ],
}
# The SER vocabulary's abbreviations ("hap", "ang", "sur") are codes of answers, never words of a reply.
_CODES = {"hap", "ang", "sur"}
_PATTERNS = [
    (label, re.compile(r"\b(" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + r")\b", re.IGNORECASE))
    for label in LABELS
    if (words := [w for w in SYNONYMS[label] if w not in _CODES] + REPLY_WORDS[label])
]


def detect_emotion(response: str) -> str | None:
    """The emotion a reply names or reacts to first (one of the labels), or None."""
    text = str(response or "")
    hits = []
    for label, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            if not NEGATED.search(text[: m.start()]):
                hits.append((m.start(), label))
                break
    return min(hits)[1] if hits else None


def congruence_row(response: str, gold: str) -> dict:
    """Per-reply congruence fields, for responses.jsonl and the paired tests."""
    found = detect_emotion(response)
    congruent = found == gold or (gold == NEUTRAL and found is None)
    incongruent = found is not None and found != gold
    return {
        "response_emotion": found,
        "congruent": int(congruent),
        "incongruent": int(incongruent),
        "emotion_named": int(found is not None),
    }


GOLD_FILE = Path(__file__).with_name("congruence_gold.csv")


def detector_accuracy(path: Path = GOLD_FILE) -> dict:
    """The detector against hand-labelled replies (system outputs and edge cases): accuracy, per source."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    found = [detect_emotion(r["response"]) or "none" for r in rows]
    right = [f == r["label"] for f, r in zip(found, rows, strict=True)]
    per_source: dict[str, list[bool]] = {}
    for r, ok in zip(rows, right, strict=True):
        per_source.setdefault(r["source"], []).append(ok)
    return {
        "accuracy": sum(right) / len(rows),
        "n": len(rows),
        "file": path.name,
        "per_source": {s: {"accuracy": sum(v) / len(v), "n": len(v)} for s, v in per_source.items()},
    }
