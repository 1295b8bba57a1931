"""SER answer parsing and UA/WA with hand-computed answers; the local evaluate module."""

from __future__ import annotations

import pytest

from relm.errors import RelmError
from relm.scoring.ser import UNPARSEABLE, parse_emotion, ser_scores, unweighted_accuracy


@pytest.mark.parametrize(
    "answer,label",
    [
        ("Angry.", "angry"),
        ("The emotion tone is HAPPINESS!", "happy"),
        ("surprised", "surprise"),
        ("I think the speaker sounds sad, maybe a little angry.", "sad"),
        ("anger", "angry"),
        ("It is not angry; it sounds neutral.", "neutral"),
        ("The speaker is excited", "happy"),
        ("", UNPARSEABLE),
        ("I cannot tell from this audio.", UNPARSEABLE),
        ("neutral, sad, angry, happy, or surprise", UNPARSEABLE),  # echoed the options
        ("happy or sad or angry", UNPARSEABLE),  # hedged
    ],
)
def test_parse_emotion(answer, label):
    assert parse_emotion(answer) == label


def test_parse_respects_the_class_set():
    four = ("neutral", "happy", "angry", "sad")
    assert parse_emotion("Surprise!", four) == UNPARSEABLE
    assert parse_emotion("sad", four) == "sad"


def test_ua_wa_hand_computed():
    gold = ["happy", "happy", "happy", "happy", "sad", "sad", "angry", "angry"]
    pred = ["happy", "happy", "happy", "sad", "sad", UNPARSEABLE, "angry", "happy"]
    s = ser_scores(gold, pred)
    # recalls: happy 3/4, sad 1/2, angry 1/2 -> UA = (0.75 + 0.5 + 0.5) / 3
    assert s.ua == pytest.approx((0.75 + 0.5 + 0.5) / 3)
    assert s.wa == pytest.approx(5 / 8)
    assert s.n_unparseable == 1
    assert s.confusion[s.labels.index("sad")][-1] == 1  # the unparseable column
    assert unweighted_accuracy(gold, pred) == pytest.approx(s.ua)


def test_ua_ignores_classes_absent_from_gold():
    assert ser_scores(["sad", "sad"], ["sad", "happy"]).ua == pytest.approx(0.5)


def test_bad_labels_are_clear_errors():
    with pytest.raises(RelmError, match="outside the class set"):
        ser_scores(["fear"], ["sad"])
    with pytest.raises(RelmError, match="neither labels"):
        ser_scores(["sad"], ["Sad!"])
    with pytest.raises(RelmError, match="2 gold labels but 1"):
        ser_scores(["sad", "sad"], ["sad"])


def test_empty_input():
    assert ser_scores([], []).n == 0


def test_local_evaluate_modules_load_offline():
    import evaluate

    from relm import metrics

    uar = evaluate.load(metrics.path("uar"))
    out = uar.compute(predictions=["a", "b", "a", "a"], references=["a", "b", "b", "a"])
    assert out == {"uar": pytest.approx(0.75), "wa": pytest.approx(0.75)}
    epi = evaluate.load(metrics.path("epitome"))
    out = epi.compute(predictions=[0, 1, 2, 2], gold_levels=[0, 1, 1, 2])
    assert out["mean_level"] == pytest.approx(1.25) and out["level_share"] == [0.25, 0.25, 0.5]
    assert out["accuracy"] == pytest.approx(0.75)
