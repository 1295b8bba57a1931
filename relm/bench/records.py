"""The records that flow through a sweep, typed: an utterance as the systems read it (`Item`), one answer
(`AnswerRow`), the same answer scored (`ScoredRow`, a line of responses.jsonl; open to metric plugins) and a run's
training record (`TrainRecord`, its train.json). results.json's own schema is `relm/results.py`.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

import torch

from relm.models.budget import Budget


class Item(TypedDict):
    """One utterance of a split, as training and answering read it (`DatasetBundle.items`)."""

    utt_id: str
    frames: torch.Tensor
    """the frozen speech encoder's frames (T x d), float16"""
    emotion: torch.Tensor
    """the frozen emotion encoder's utterance embedding"""
    avd: torch.Tensor
    """the A/V/D target (annotations or the encoder's prediction, `avd_targets`)"""
    label: int
    """the emotion's index in the class set"""
    emotion_name: str
    transcript: str
    target: str | None
    """the teacher's reply (step 1), None where it has none"""
    target_complete: bool
    """False when the teacher's reply hit its token limit (no end-of-reply token is trained)"""
    task: NotRequired[str]
    """training only: `response` or `ser` (`training_items`)"""


class AnswerRow(TypedDict):
    """One test utterance answered by a system (`generation.answer`)."""

    id: str
    transcript: str
    gold_emotion: str
    response: str
    ser_answer: str
    ser_head: str | None
    """the SER head's label (speech systems), else None"""
    avd_pred: list[float] | None
    avd_target: list[float] | None


# An answer with its scores (`scoring.score_rows`), one line of a run's responses.jsonl: the `AnswerRow` fields plus
# `ser_label`, the congruence fields (`response_emotion`, `congruent`, `incongruent`, `emotion_named`), the reply
# columns (`reply_words`, `repeated`, `relevance`, `off_topic`), `er`/`ip`/`ex`, and each registered metric's
# per-row column (`Metric.item_key`). Open, since a metric registered from outside adds its own column.
ScoredRow = dict[str, Any]


class Selection(TypedDict, total=False):
    """Which weights a run evaluates (`ValidateAndSelect.record`)."""

    select: str
    selected_step: int
    best_val_loss: float
    last_val_loss: float | None
    val_history: list[list[float]]


class TrainRecord(Budget, Selection, total=False):
    """A run's training record (train.json in its cache entry; `metrics_by_seed[..]["train"]` in results)."""

    train_items: dict[str, int]
    trainable_params: int
    total_params: int
    loaded_from_speech_init: list[str]
    """the parts loaded from the preset's `speech_init` release (none: [])"""
    padding_share: Any
    train_seconds: float
    seconds_per_step: float
    answered_in_workers: bool
    optimizer_steps_done: int
    generate_seconds: float
    checkpoint: str
