"""The manifest: one row per utterance, the same columns for every corpus."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from relm.errors import RelmError

LABELS = ("neutral", "happy", "angry", "sad", "surprise")
SPLITS = ("train", "val", "test")
COLUMNS = {
    "utt_id": "string",
    "path": "string",
    "transcript": "string",
    "emotion": "string",
    "orig_label": "string",
    "speaker": "string",
    "gender": "string",
    "split": "string",
    "arousal": "float64",
    "valence": "float64",
    "dominance": "float64",
    "duration": "float64",
    "protocol": "string",
}


@dataclass
class Manifest:
    """A corpus read by an adapter: the table plus what was skipped and why."""

    df: pd.DataFrame
    dataset: str
    root: str
    protocol: str
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_examples: dict[str, list[str]] = field(default_factory=dict)
    avd_source: str = "none"  # "annotations" or "none" (pseudo-targets come later, from a model)
    audio_sha256: dict[str, str] = field(default_factory=dict)  # path -> content digest, from the audio checks

    def skip(self, reason: str, example: str = "") -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        examples = self.skipped_examples.setdefault(reason, [])
        if example and len(examples) < 3:
            examples.append(example)


def make_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows -> a DataFrame with exactly the manifest columns and dtypes, sorted by id."""
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    for col, dtype in COLUMNS.items():
        df[col] = df[col].astype(dtype)
    return df.sort_values("utt_id", kind="stable").reset_index(drop=True)


def check_manifest(df: pd.DataFrame, source: str, classes: tuple[str, ...] = LABELS) -> None:
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise RelmError(f"{source}: manifest lacks column(s) {missing}")
    bad = sorted(set(df["emotion"].dropna()) - set(classes))
    if bad:
        raise RelmError(f"{source}: emotion(s) {bad} outside the class set {list(classes)}")
    bad_split = sorted(set(df["split"].dropna()) - set(SPLITS))
    if bad_split:
        raise RelmError(f"{source}: split(s) {bad_split} not in {list(SPLITS)}")
    if df["utt_id"].duplicated().any():
        dup = df.loc[df["utt_id"].duplicated(), "utt_id"].iloc[0]
        raise RelmError(f"{source}: duplicate utterance id {dup!r}")
