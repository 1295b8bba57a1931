"""32 realistic SER answers (small models, zero-shot LLMs, verbose chat models), each labelled by hand."""

from __future__ import annotations

import pytest

from relm.scoring.ser import UNPARSEABLE, parse_emotion

ANSWERS = [
    ("Angry", "angry"),
    ("The emotion is sad.", "sad"),
    ("happy", "happy"),
    ("Neutral.", "neutral"),
    ("The speaker sounds surprised.", "surprise"),
    ("The speaker doesn't sound angry, they sound calm.", "neutral"),
    ("I'd say the tone is not happy but sad.", "sad"),
    ("Angry. The options were neutral, sad, angry, happy, or surprise.", "angry"),
    ("neutral, sad, angry, happy, or surprise", UNPARSEABLE),
    ("The emotion tone of the speech is happy.", "happy"),
    ("It sounds frustrated and annoyed.", "angry"),
    ("The speaker is furious!", "angry"),
    ("Sadness", "sad"),
    ("The tone is joyful and excited.", "happy"),
    ("I cannot determine the emotion from the text.", UNPARSEABLE),
    ("There is no emotion in this speech; it is neutral.", "neutral"),
    ("Surprise", "surprise"),
    ("The speaker seems upset.", "sad"),
    ("Not angry, just neutral.", "neutral"),
    ("Emotion: sad", "sad"),
    ("The speaker is neither happy nor sad; the tone is neutral.", "neutral"),
    ("It's a surprising statement, the speaker sounds amazed.", "surprise"),
    ("calm", "neutral"),
    ("The speaker sounds angry, not sad.", "angry"),
    ("Answer: happy. Options: neutral, sad, angry, happy, surprise.", "happy"),
    ("The speech conveys a sense of disappointment and sorrow.", "sad"),
    ("", UNPARSEABLE),
    ("I think the emotion is mad.", "angry"),
    ("The speaker never sounds happy here; it's sad.", "sad"),
    ("The tone is indifferent.", "neutral"),
    ("The text is neutral.", "neutral"),
    ("The text is written in a", UNPARSEABLE),
]


def test_the_table_is_thirty_or_more_distinct_answers():
    assert len(ANSWERS) >= 30 and len({a for a, _ in ANSWERS}) == len(ANSWERS)


@pytest.mark.parametrize(("answer", "label"), ANSWERS)
def test_realistic_answer(answer, label):
    assert parse_emotion(answer) == label
