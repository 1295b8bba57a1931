"""TF-IDF + logistic regression EPITOME scorer: trains in seconds on CPU, saved without pickles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from relm.scoring.empathy_base import EmpathyScorer
from relm.scoring.epitome_data import MECHANISMS


class TfidfScorer(EmpathyScorer):
    """Word 1-2-gram TF-IDF of the response (keeping ? and !) + class-balanced logistic regression.

    The seeker post added nothing in cross-validation (DESIGN.md), so only the response is used.
    """

    TOKEN_PATTERN = r"(?u)\b\w+\b|[?!]"
    per_mechanism = True

    def __init__(self, kind: str, C: float = 1.0, min_df: int = 2):
        super().__init__(kind, C=C, min_df=min_df)
        self.models: dict = {}

    def _vectorizer(self, **kw):
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(
            ngram_range=(1, 2), token_pattern=self.TOKEN_PATTERN, sublinear_tf=True, lowercase=True, **kw
        )

    def fit(self, train: pd.DataFrame, val: pd.DataFrame) -> None:
        from sklearn.linear_model import LogisticRegression

        for mech in self.mechanisms:
            vec = self._vectorizer(min_df=self.params["min_df"])
            x = vec.fit_transform(train["response_post"])
            clf = LogisticRegression(C=self.params["C"], class_weight="balanced", max_iter=3000)
            clf.fit(x, train[mech])
            self.models[mech] = (vec, clf)

    def _predict(self, seekers, responses):
        return {m: clf.predict(vec.transform(responses)) for m, (vec, clf) in self.models.items()}

    def _save(self, folder: Path) -> None:
        # Plain arrays and a JSON vocabulary instead of pickles: safe to load, version-proof.
        arrays: dict[str, np.ndarray] = {}
        vocab: dict[str, list[str]] = {}
        for mech, (vec, clf) in self.models.items():
            vocab[mech] = sorted(vec.vocabulary_, key=vec.vocabulary_.get)
            arrays |= {
                f"{mech}/idf": vec.idf_,
                f"{mech}/coef": clf.coef_,
                f"{mech}/intercept": clf.intercept_,
                f"{mech}/classes": clf.classes_,
            }
        np.savez(folder / "tfidf.npz", **arrays)  # type: ignore[arg-type]  # numpy stubs read allow_pickle
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
