"""What every EPITOME empathy scorer shares: the interface, saving, and held-out evaluation."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix

from relm.cache import write_manifest
from relm.errors import RelmError
from relm.io import atomic_dir
from relm.keys import content_key
from relm.scoring.epitome_data import MECHANISMS

LEVELS = (0, 1, 2)
FORMAT_VERSION = 2  # bump when a saved scorer's files change meaning (v2: lower-case mechanism keys)


def scorer_identity(kind: str, params: dict, data_hash: str, seed: int, all_rows: bool = False) -> str:
    """`<kind>-<key of kind, parameters, training data, seed, format[, all rows]>`: what exactly scored the
    responses (a scorer trained on every row differs from one that held a fifth of the seekers out)."""
    return f"{kind}-{content_key(kind, params, data_hash, seed, FORMAT_VERSION, *(['all-rows'] if all_rows else []))}"


class EmpathyScorer(ABC):
    """Predicts EPITOME levels; `meta` carries identity, training-data hash and validity."""

    def __init__(self, kind: str, **params):
        self.kind = kind  # the name it is registered under (`relm ls scorers`)
        self.params = params
        self.device: Any = (
            "cpu"  # a torch device, set by `empathy.build` from the caller's Runtime; not in the identity
        )
        self.meta: dict = {"kind": kind, "params": params}
        self.mechanisms: tuple[str, ...] = MECHANISMS  # `fit` trains these; a subset only where `per_mechanism`

    @abstractmethod
    def fit(self, train: pd.DataFrame, val: pd.DataFrame) -> None: ...

    @abstractmethod
    def _predict(self, seekers: list[str], responses: list[str]) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def _save(self, folder: Path) -> None: ...

    @abstractmethod
    def _load(self, folder: Path) -> None: ...

    def score(self, seekers: list[str], responses: list[str]) -> dict[str, np.ndarray]:
        """Levels per mechanism for each (seeker, response); an empty input gives empty arrays."""
        if len(seekers) != len(responses):
            raise RelmError(f"score: {len(seekers)} seeker posts but {len(responses)} responses")
        if not responses:
            return {m: np.zeros(0, dtype=int) for m in self.mechanisms}
        seekers = [str(s) for s in seekers]
        responses = [str(r) for r in responses]
        return {m: np.asarray(v, dtype=int) for m, v in self._predict(seekers, responses).items()}

    def write_files(self, folder: Path) -> None:
        """The scorer's own files and meta.json, into an existing folder."""
        self._save(folder)
        (folder / "meta.json").write_text(json.dumps(self.meta, indent=2, sort_keys=True))

    def save(self, folder: Path) -> Path:
        with atomic_dir(folder) as tmp:
            self.write_files(tmp)
            write_manifest(tmp, folder.parent.name, folder.name, {"kind": self.kind, "params": self.params})
        return folder

    watches_validation = False  # True: `fit` picks its epoch on the held-out rows, so it cannot train on all rows
    per_mechanism = False  # True: one model per mechanism, each trained alone, so `mechanisms` may be a subset

    @property
    def identity(self) -> str:
        m = self.meta
        return scorer_identity(
            self.kind, self.params, m.get("data_hash", "?"), m.get("seed", 0), m.get("all_rows", False)
        )


def evaluate(scorer: EmpathyScorer, table: pd.DataFrame) -> dict[str, dict]:
    """Accuracy, macro-F1, per-level F1 and the confusion matrix (rows: gold level 0-2, columns: predicted) of the
    scorer against the table's gold levels, for each mechanism the scorer predicts."""
    preds = scorer.score(table["seeker_post"].tolist(), table["response_post"].tolist())
    out = {}
    for mech in scorer.mechanisms:
        gold, pred = table[mech].to_numpy(), preds[mech]
        out[mech] = figures_of(confusion_matrix(gold, pred, labels=list(LEVELS)))
    return out


def figures_of(confusion: np.ndarray) -> dict:
    """Accuracy, macro-F1 (a level never given nor predicted counts 0, as sklearn's zero_division=0), per-level F1,
    n and the confusion matrix itself, from a confusion matrix (rows: gold, columns: predicted)."""
    c = np.asarray(confusion, dtype=np.int64)
    hits = np.diag(c)
    denominator = c.sum(0) + c.sum(1)
    per_level = np.divide(2 * hits, denominator, out=np.zeros(len(c)), where=denominator > 0)
    return {
        "accuracy": float(hits.sum() / max(c.sum(), 1)),
        "macro_f1": float(per_level.mean()),
        "f1_per_level": {str(lv): float(f) for lv, f in zip(LEVELS, per_level)},
        "n": int(c.sum()),
        "confusion": c.tolist(),
    }


def batched_macro_f1(confusion: np.ndarray, batch_size: int = 32, draws: int = 200, seed: int = 0) -> float:
    """EPITOME's own reading of macro-F1: its `train.py` takes sklearn's macro-F1 over each test batch of 32 (the
    levels seen in that batch's gold or predictions) and averages the batches. Computed from a confusion matrix as
    its expectation over `draws` seeded random orders of the rows (a random split's order), so that relm's pooled
    figures can be set beside the EPITOME paper's on its terms."""
    c = np.asarray(confusion, dtype=np.int64)
    levels = len(c)
    codes = np.repeat(np.arange(levels * levels), c.ravel())  # gold * levels + predicted, one per row
    n = len(codes)
    if n == 0:
        return 0.0
    batches = -(-n // batch_size)
    order = np.random.default_rng(seed).permuted(np.tile(codes, (draws, 1)), axis=1)
    cell = (np.arange(draws)[:, None] * batches + np.arange(n) // batch_size) * levels * levels + order
    counts = np.bincount(cell.ravel(), minlength=draws * batches * levels * levels)
    counts = counts.reshape(draws, batches, levels, levels)
    hits = np.diagonal(counts, axis1=2, axis2=3)
    seen = counts.sum(3) + counts.sum(2)  # gold + predicted per level
    f1 = np.divide(2 * hits, seen, out=np.zeros(seen.shape), where=seen > 0)
    per_batch = f1.sum(2) / np.maximum((seen > 0).sum(2), 1)
    return float(per_batch.mean())
