"""Scoring responses from outside relm: `relm scorer score` and `relm evaluate --responses`."""

from __future__ import annotations

import json

import pytest

from relm.cli import main
from relm.scoring import empathy
from relm.scoring.epitome_data import load_epitome
from tests.test_empathy import ROWS, write_epitome

PAIRS = [
    ("I lost my job today", "I'm so sorry to hear that. What happened?", "sad"),
    ("I passed my exam!", "Congratulations, that is wonderful news!", "happy"),
    ("They cancelled my flight again", "You don't sound angry at all.", "angry"),
    ("The bus is late", "Okay.", "neutral"),
]


@pytest.fixture
def trained_tfidf(tmp_path, tmp_cache):
    empathy.train("tfidf", load_epitome(write_epitome(tmp_path / "epi", ROWS * 3)), seed=0, min_df=1)


def _score(path, capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["scorer", "score", "--input", str(path), "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_score_a_csv_and_a_jsonl_in_order(trained_tfidf, tmp_path, capsys):
    csv_path = tmp_path / "mine.csv"
    lines = ["seeker_post,response_post,gold_emotion"] + [f'"{s}","{r}",{g}' for s, r, g in PAIRS]
    csv_path.write_text("\n".join(lines) + "\n")
    out = _score(csv_path, capsys)
    assert [r["response_emotion"] for r in out] == ["sad", "happy", None, None]
    assert [r["congruent"] for r in out] == [True, True, False, True]  # naming none is congruent for neutral
    assert all(set(r) == {"er", "ip", "ex", "response_emotion", "congruent"} for r in out)
    assert all(r[m] in (0, 1, 2) for r in out for m in ("er", "ip", "ex"))
    jsonl = tmp_path / "mine.jsonl"
    jsonl.write_text("".join(json.dumps({"transcript": s, "response": r}) + "\n" for s, r, _ in PAIRS))
    again = _score(jsonl, capsys)
    assert [r["er"] for r in again] == [r["er"] for r in out] and all(r["congruent"] is None for r in again)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"seeker_post,answer\nhi,there\n", "needs columns seeker_post and response_post"),
        (b"seeker_post,response_post\nhi,caf\xe9\n", "line 2 is not UTF-8"),
        (b"seeker_post,response_post,gold_emotion\nhi,there,fear\n", "row 1: gold_emotion 'fear'"),
    ],
)
def test_bad_input_is_one_line_naming_the_row(trained_tfidf, tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    assert main(["scorer", "score", "--input", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(path) in err[0]


def test_the_detector_is_measured_on_hand_labelled_replies():
    from relm.scoring.congruence import detector_accuracy

    acc = detector_accuracy()
    assert acc["n"] >= 150 and set(acc["per_source"]) >= {"text-zs", "text", "speech", "re-llm", "teacher", "edge"}
    assert acc["accuracy"] >= 0.95, acc  # measured 0.983; 0.897 before the lexicon saw these replies
    assert acc["per_source"]["heldout-re-llm"]["accuracy"] == 1.0  # replies labelled after the lexicon was fixed
