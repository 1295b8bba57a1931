"""EPITOME empathy scorers: (seeker post, response) -> level 0/1/2 for ER, IP and EX.

No trained EPITOME weights are public, so relm trains its own and records, with every
scorer, the hash of its training data and its held-out accuracy and macro-F1.
Kinds, fast to faithful: `tfidf` (seconds), `minilm` (fine-tuned MiniLM, CPU minutes),
`roberta` (the paper's RoBERTa bi-encoder recipe, for GPUs).
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from relm.errors import RelmError
from relm.io import atomic_dir
from relm.paths import cache_dir
from relm.scoring.epitome_data import MECHANISMS, EpitomeData, pair_key, split_by_seeker

LEVELS = (0, 1, 2)


class EmpathyScorer(ABC):
    """Predicts EPITOME levels; `meta` carries identity, training-data hash and validity."""

    kind: ClassVar[str]

    def __init__(self, **params):
        self.params = params
        self.meta: dict = {"kind": self.kind, "params": params}

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
            return {m: np.zeros(0, dtype=int) for m in MECHANISMS}
        seekers = [str(s) for s in seekers]
        responses = [str(r) for r in responses]
        return {m: np.asarray(v, dtype=int) for m, v in self._predict(seekers, responses).items()}

    def save(self, folder: Path) -> Path:
        with atomic_dir(folder) as tmp:
            self._save(tmp)
            (tmp / "meta.json").write_text(json.dumps(self.meta, indent=2, sort_keys=True))
        return folder

    @classmethod
    def load(cls, folder: Path) -> EmpathyScorer:
        meta_path = Path(folder) / "meta.json"
        if not meta_path.is_file():
            raise RelmError(f"{folder}: not a saved scorer (no meta.json)")
        meta = json.loads(meta_path.read_text())
        scorer = SCORERS[meta["kind"]](**meta.get("params", {}))
        scorer._load(Path(folder))
        scorer.meta = meta
        return scorer

    @property
    def identity(self) -> str:
        return f"{self.kind}@{self.meta.get('data_hash', '?')[:16]}-s{self.meta.get('seed', '?')}"


class TfidfScorer(EmpathyScorer):
    """Word 1-2-gram TF-IDF of the response (keeping ? and !) + class-balanced logistic regression.

    The seeker post added nothing in cross-validation (DESIGN.md), so only the response is used.
    """

    kind = "tfidf"
    TOKEN_PATTERN = r"(?u)\b\w+\b|[?!]"

    def __init__(self, C: float = 1.0, min_df: int = 2):
        super().__init__(C=C, min_df=min_df)
        self.models: dict = {}

    def _vectorizer(self, **kw):
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(ngram_range=(1, 2), token_pattern=self.TOKEN_PATTERN, sublinear_tf=True,
                               lowercase=True, **kw)

    def fit(self, train: pd.DataFrame, val: pd.DataFrame) -> None:
        from sklearn.linear_model import LogisticRegression

        for mech in MECHANISMS:
            vec = self._vectorizer(min_df=self.params["min_df"])
            x = vec.fit_transform(train["response_post"])
            clf = LogisticRegression(C=self.params["C"], class_weight="balanced", max_iter=3000)
            clf.fit(x, train[mech])
            self.models[mech] = (vec, clf)

    def _predict(self, seekers, responses):
        return {m: clf.predict(vec.transform(responses)) for m, (vec, clf) in self.models.items()}

    def _save(self, folder: Path) -> None:
        # Plain arrays and a JSON vocabulary instead of pickles: safe to load, version-proof.
        arrays, vocab = {}, {}
        for mech, (vec, clf) in self.models.items():
            vocab[mech] = sorted(vec.vocabulary_, key=vec.vocabulary_.get)
            arrays |= {f"{mech}/idf": vec.idf_, f"{mech}/coef": clf.coef_,
                       f"{mech}/intercept": clf.intercept_, f"{mech}/classes": clf.classes_}
        np.savez(folder / "tfidf.npz", **arrays)
        (folder / "vocabulary.json").write_text(json.dumps(vocab))

    def _load(self, folder: Path) -> None:
        from sklearn.linear_model import LogisticRegression

        arrays = np.load(folder / "tfidf.npz")
        vocab = json.loads((folder / "vocabulary.json").read_text())
        for mech in MECHANISMS:
            vec = self._vectorizer(vocabulary={t: i for i, t in enumerate(vocab[mech])})
            vec.idf_ = arrays[f"{mech}/idf"]
            clf = LogisticRegression()
            clf.coef_, clf.intercept_ = arrays[f"{mech}/coef"], arrays[f"{mech}/intercept"]
            clf.classes_ = arrays[f"{mech}/classes"]
            self.models[mech] = (vec, clf)


def _neural(kind: str):
    from relm.scoring import empathy_neural

    return empathy_neural.NEURAL_KINDS[kind]


class _LazyRegistry(dict):
    """`tfidf` needs only sklearn; the neural kinds import torch/transformers on first use."""

    def __missing__(self, kind: str):
        if kind in ("minilm", "roberta"):
            self[kind] = _neural(kind)
            return self[kind]
        raise RelmError(f"unknown scorer kind {kind!r}; choose one of tfidf, minilm, roberta")


SCORERS: dict[str, type[EmpathyScorer]] = _LazyRegistry(tfidf=TfidfScorer)
KINDS = ("tfidf", "minilm", "roberta")


def evaluate(scorer: EmpathyScorer, table: pd.DataFrame) -> dict[str, dict]:
    """Accuracy, macro-F1 and per-level F1 of the scorer against the table's gold levels."""
    preds = scorer.score(table["seeker_post"].tolist(), table["response_post"].tolist())
    out = {}
    for mech in MECHANISMS:
        gold, pred = table[mech].to_numpy(), preds[mech]
        per_level = f1_score(gold, pred, labels=list(LEVELS), average=None, zero_division=0)
        out[mech] = {"accuracy": float(accuracy_score(gold, pred)),
                     "macro_f1": float(f1_score(gold, pred, labels=list(LEVELS), average="macro",
                                                zero_division=0)),
                     "f1_per_level": {str(lv): float(f) for lv, f in zip(LEVELS, per_level)},
                     "n": int(len(gold))}
    return out


def scorer_dir(kind: str, data_hash: str, seed: int) -> Path:
    return cache_dir() / "scorers" / kind / f"{data_hash[:16]}-s{seed}"


def train(kind: str, data: EpitomeData, seed: int = 0, val_fraction: float = 0.2, **params) -> EmpathyScorer:
    """Train a scorer on a seeker-grouped split, validate on held-out seekers, save it."""
    import random

    random.seed(seed)
    np.random.seed(seed)
    train_df, val_df = split_by_seeker(data.table, val_fraction, seed)
    scorer = SCORERS[kind](**params)
    scorer.meta["seed"] = seed  # the neural kinds seed torch from it
    start = time.perf_counter()
    scorer.fit(train_df, val_df)
    seconds = time.perf_counter() - start
    scorer.meta |= {
        "data_hash": data.data_hash, "data_source": data.source, "seed": seed,
        "skipped_rows": data.skipped, "n_train": len(train_df), "n_val": len(val_df),
        "train_seconds": round(seconds, 2), "validation": evaluate(scorer, val_df),
        "train_keys": sorted(train_df["key"]), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    scorer.save(scorer_dir(kind, data.data_hash, seed))
    return scorer


def load_trained(kind: str | None = None, data_hash: str | None = None) -> EmpathyScorer:
    """The newest trained scorer of `kind` (any kind, fastest first, when None)."""
    kinds = [kind] if kind else list(KINDS)
    for k in kinds:
        folders = sorted((cache_dir() / "scorers" / k).glob("*/meta.json"), key=lambda p: p.stat().st_mtime)
        if data_hash:
            folders = [f for f in folders if f.parent.name.startswith(data_hash[:16])]
        if folders:
            return EmpathyScorer.load(folders[-1].parent)
    raise RelmError(f"no trained {kind or 'empathy'} scorer in {cache_dir() / 'scorers'}; "
                    f"run `relm scorer train --kind {kind or 'tfidf'} --data DIR`")


def unseen_rows(scorer: EmpathyScorer, table: pd.DataFrame) -> pd.DataFrame:
    """Rows whose (seeker, response) pair the scorer did not train on."""
    seen = set(scorer.meta.get("train_keys", []))
    keys = [pair_key(s, r) for s, r in zip(table["seeker_post"], table["response_post"])]
    return table[[k not in seen for k in keys]].reset_index(drop=True)
