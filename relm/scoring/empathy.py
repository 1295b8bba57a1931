"""EPITOME empathy scorers: (seeker post, response) -> level 0/1/2 for ER, IP and EX.

No trained EPITOME weights are public, so relm trains its own and records, with every
scorer, the hash of its training data and its held-out accuracy and macro-F1.
Kinds, fast to faithful: `tfidf` (seconds), `minilm` (fine-tuned MiniLM, CPU minutes),
`roberta` (the paper's RoBERTa bi-encoder recipe, for GPUs), `epitome` (EPITOME's released
bi-encoder layer for layer over any encoder: MiniLM on a CPU, roberta-base on a GPU). The neural kinds import
torch and transformers only when used.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from relm.cache import CacheEntry, load_or_compute
from relm.errors import RelmError
from relm.io import atomic_write_json
from relm.keys import content_key
from relm.paths import cache_dir
from relm.registry import Registry
from relm.scoring.empathy_base import (
    FORMAT_VERSION,
    EmpathyScorer,
    batched_macro_f1,
    evaluate,
    figures_of,
    scorer_identity,
)
from relm.scoring.epitome_data import MECHANISMS, EpitomeData, pair_key, split_by_seeker

if TYPE_CHECKING:  # torch loads only with a neural kind
    import torch

SCORER_STAGE = "scorers"  # the cache folder of trained scorers
SCORERS: Registry[type[EmpathyScorer]] = Registry("scorer kind")
SCORERS.register("tfidf", lazy="relm.scoring.empathy_tfidf:TfidfScorer")
SCORERS.register("minilm", lazy="relm.scoring.empathy_neural:MiniLMScorer")
SCORERS.register("roberta", lazy="relm.scoring.empathy_roberta:RobertaScorer")
SCORERS.register("epitome", lazy="relm.scoring.empathy_epitome:EpitomeScorer")
CHECKPOINT_KIND = "epitome"  # the kind an authors' EPITOME checkpoint folder loads as (`load_checkpoint`)


def build(kind: str, device: torch.device | str = "cpu", **params) -> EmpathyScorer:
    """A scorer of `kind` that computes on `device` (the caller's `Runtime.device`)."""
    scorer = SCORERS.get(kind)(kind, **params)
    scorer.device = device
    return scorer


def check_params(kind: str, params: dict, where: str) -> None:
    """Fail in one line when `kind` takes no parameter of one of `params`' names (before anything loads or trains)."""
    import inspect

    accepted = [n for n in inspect.signature(SCORERS.get(kind)).parameters if n != "kind"]
    for name in params:
        if name not in accepted:
            raise RelmError(f"{where}: scorer kind {kind!r} takes no {name} (it takes {', '.join(accepted)})")


def load_checkpoint(
    folder: str | Path, encoder: str = "roberta-base", device: torch.device | str = "cpu"
) -> EmpathyScorer:
    """An externally trained EPITOME checkpoint folder, used as is (`relm.scoring.empathy_epitome.load_checkpoint`)."""
    from relm.scoring.empathy_epitome import load_checkpoint as load

    return load(folder, CHECKPOINT_KIND, encoder, device)


def load_folder(folder: Path, device: torch.device | str = "cpu") -> EmpathyScorer:
    meta_path = Path(folder) / "meta.json"
    if not meta_path.is_file():
        raise RelmError(f"{folder}: not a saved scorer (no meta.json)")
    meta = json.loads(meta_path.read_text())
    scorer = build(meta["kind"], device, **meta.get("params", {}))
    scorer._load(Path(folder))
    scorer.meta = meta
    return scorer


def scorer_dir(identity: str) -> Path:
    return CacheEntry(SCORER_STAGE, identity).folder


def _fitted(
    kind: str,
    train_df: pd.DataFrame,
    val_df: pd.DataFrame,
    seed: int,
    device: torch.device | str,
    mechanisms: tuple[str, ...] = MECHANISMS,
    **params,
) -> EmpathyScorer:
    """A scorer of `kind` fitted on `train_df` (`val_df` for kinds that watch it) for `mechanisms`, every random
    source seeded."""
    random.seed(seed)
    np.random.seed(seed)
    scorer = build(kind, device, **params)
    scorer.meta["seed"] = seed  # the neural kinds seed torch from it
    scorer.mechanisms = mechanisms
    scorer.fit(train_df, val_df)
    return scorer


def train(
    kind: str,
    data: EpitomeData,
    seed: int = 0,
    val_fraction: float = 0.2,
    save: bool = True,
    device: torch.device | str = "cpu",
    all_rows: bool = False,
    cv_folds: int = 5,
    **params,
) -> EmpathyScorer:
    """Train a scorer on a seeker-grouped split and validate it on the held-out seekers; or (`all_rows`) train it on
    every row, its validity then pooled over a `cv_folds`-fold cross-validation by seeker (each fold cached, the
    whole in `meta["cross_validation"]`). `save`: cache it."""
    if all_rows and SCORERS.get(kind).watches_validation:
        raise RelmError(f"scorer kind {kind!r} picks its epoch on held-out rows, so it cannot train on all rows")
    if all_rows and cv_folds < 2:
        raise RelmError(f"training on all rows needs a cross-validation of at least 2 folds, got {cv_folds}")
    if all_rows:
        found = cross_validate(kind, data, cv_folds, seed, device, **params)
        train_df, val_df, validation = data.table, data.table.iloc[:0], found.pop("pooled")
    else:
        train_df, val_df = split_by_seeker(data.table, val_fraction, seed)
    start = time.perf_counter()
    scorer = _fitted(kind, train_df, val_df, seed, device, **params)
    seconds = time.perf_counter() - start
    scorer.meta |= {
        "data_hash": data.data_hash,
        "data_source": data.source,
        "seed": seed,
        "all_rows": all_rows,
        "skipped_rows": data.skipped,
        "n_train": len(train_df),
        "n_val": len(val_df),
        "train_seconds": round(seconds, 2),
        "validation": validation if all_rows else evaluate(scorer, val_df),
        "train_keys": sorted(train_df["key"]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "format": FORMAT_VERSION,
    }
    if all_rows:
        scorer.meta["cross_validation"] = found
    if save:  # under the entry's lock: a sweep reading this scorer waits instead of finding it half replaced
        entry = CacheEntry(SCORER_STAGE, scorer.identity)
        with entry.lock(), entry.write({"kind": scorer.kind, "params": scorer.params}) as tmp:
            scorer.write_files(tmp)
    return scorer


def load_or_train(
    kind: str,
    data: EpitomeData,
    seed: int = 0,
    force: bool = False,
    device: torch.device | str = "cpu",
    all_rows: bool = False,
    **params,
) -> EmpathyScorer:
    """The scorer of exactly this kind, parameters, training data, seed and training rows: from the cache (a
    `relm.cache` entry, checked on read), else trained now; a damaged one is quarantined and trained again."""
    entry = trained_entry(kind, data.data_hash, seed, all_rows, **params)

    def compute(folder: Path) -> EmpathyScorer:
        scorer = train(kind, data, seed, save=False, device=device, all_rows=all_rows, **params)
        scorer.write_files(folder)
        return scorer

    def read(folder: Path) -> EmpathyScorer:
        return load_folder(folder, device)

    return load_or_compute(entry, read, compute, force=force)


def trained_entry(kind: str, data_hash: str, seed: int = 0, all_rows: bool = False, **params) -> CacheEntry:
    """The cache entry of the scorer `load_or_train` gives for these arguments (ready once trained)."""
    return CacheEntry(SCORER_STAGE, scorer_identity(kind, build(kind, **params).params, data_hash, seed, all_rows))


def fold_entry(
    kind: str, params: dict, data_hash: str, seed: int, folds: int, fold: int, mechanisms: tuple[str, ...] = MECHANISMS
) -> CacheEntry:
    """The cache entry of one fold's figures in `cross_validate` (keyed by the parameters as given, and by the
    mechanisms where they are a subset)."""
    subset = [] if tuple(mechanisms) == MECHANISMS else [list(mechanisms)]
    key = content_key("cv", kind, params, data_hash, seed, folds, fold, FORMAT_VERSION, *subset)
    return CacheEntry(SCORER_STAGE, f"cv-{kind}-{key}")


def measured_train_seconds(kind: str, **params) -> float | None:
    """How long the newest cached scorer of `kind` with these parameters took to train here (None: none cached)."""
    resolved = build(kind, **params).params
    metas = [m for m in _cached_metas(kind) if m.get("params") == resolved and "train_seconds" in m]
    return max(metas, key=lambda m: m["created"])["train_seconds"] if metas else None


def _cached_metas(kind: str) -> list[dict]:
    """The meta.json of every complete cached scorer of `kind` in the current format, with its `_folder`."""
    metas = [
        json.loads(p.read_text()) | {"_folder": p.parent}
        for p in (cache_dir() / SCORER_STAGE).glob(f"{kind}-*/meta.json")
        if CacheEntry(SCORER_STAGE, p.parent.name).ready()
    ]
    return [m for m in metas if m.get("format") == FORMAT_VERSION]


def checked_mechanisms(kind: str, mechanisms: tuple[str, ...]) -> tuple[str, ...]:
    """`mechanisms` in EPITOME's order, whatever order was given; a subset only for a kind with a model per mechanism
    (checked before any data is read)."""
    mechanisms = tuple(m for m in MECHANISMS if m in mechanisms)
    if mechanisms != MECHANISMS and not SCORERS.get(kind).per_mechanism:
        raise RelmError(f"scorer kind {kind!r} trains the mechanisms together, so it validates all three or none")
    return mechanisms


def cross_validate(
    kind: str,
    data: EpitomeData,
    folds: int = 5,
    seed: int = 0,
    device: torch.device | str = "cpu",
    mechanisms: tuple[str, ...] = MECHANISMS,
    **params,
) -> dict:
    """k-fold cross-validation grouped by seeker post (no post in two folds): per mechanism, the mean and sd over
    folds of held-out accuracy and macro-F1, each fold's figures, and (`pooled`) the figures of the k held-out
    folds' predictions together; `macro_f1_batched`: EPITOME's batch-averaged macro-F1, the mean over folds (the
    way EPITOME's released train.py computes its test figures, `batched_macro_f1`). Each fold's figures are a cache
    entry (the scorer itself is not kept), so an interrupted run resumes at the fold it was in. `mechanisms`:
    validate only these (a kind with one model per mechanism; the epitome kind then gives each the figures it has in
    a run of all three)."""
    from sklearn.model_selection import GroupKFold

    mechanisms = checked_mechanisms(kind, mechanisms)
    table = data.table
    if table["sp_id"].nunique() < folds:
        raise RelmError(f"cross-validation: {table['sp_id'].nunique()} seeker posts cannot fill {folds} folds")
    per_fold: list[dict[str, dict]] = []
    splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (train_idx, test_idx) in enumerate(splitter.split(table, groups=table["sp_id"])):
        train_df, test_df = table.iloc[train_idx].reset_index(drop=True), table.iloc[test_idx].reset_index(drop=True)

        def compute(folder: Path, train_df=train_df, test_df=test_df) -> dict:
            figures = evaluate(_fitted(kind, train_df, test_df, seed, device, mechanisms, **params), test_df)
            atomic_write_json(folder / "fold.json", figures)
            return figures

        read = lambda folder: json.loads((folder / "fold.json").read_text())  # noqa: E731
        entry = fold_entry(kind, params, data.data_hash, seed, folds, fold, mechanisms)
        per_fold.append(load_or_compute(entry, read, compute))
    out: dict = {"kind": kind, "folds": folds, "seed": seed, "data_hash": data.data_hash, "n": len(table)}
    for mech in per_fold[0]:
        for stat in ("accuracy", "macro_f1"):
            values = [f[mech][stat] for f in per_fold]
            out.setdefault(mech, {})[stat] = float(np.mean(values))
            out[mech][f"{stat}_sd"] = float(np.std(values, ddof=1))
        batched = [batched_macro_f1(np.asarray(f[mech]["confusion"])) for f in per_fold]
        out[mech]["macro_f1_batched"] = float(np.mean(batched))
    out["per_fold"] = [{m: {s: f[m][s] for s in ("accuracy", "macro_f1", "n")} for m in f} for f in per_fold]
    out["pooled"] = {m: figures_of(np.sum([f[m]["confusion"] for f in per_fold], axis=0)) for m in per_fold[0]}
    return out


def load_trained(
    kind: str | None = None, data_hash: str | None = None, device: torch.device | str = "cpu"
) -> EmpathyScorer:
    """The newest trained scorer of `kind` (any kind, fastest first, when None), for `relm scorer eval`."""
    kinds = [kind] if kind else SCORERS.names()
    for k in kinds:
        metas = [m for m in _cached_metas(k) if not data_hash or m["data_hash"] == data_hash]
        if metas:
            return load_folder(max(metas, key=lambda m: m["created"])["_folder"], device)
    raise RelmError(
        f"no trained {kind or 'empathy'} scorer in {cache_dir() / 'scorers'}; "
        f"run `relm scorer train --kind {kind or SCORERS.names()[0]} --data DIR`"
    )


def unseen_rows(scorer: EmpathyScorer, table: pd.DataFrame) -> pd.DataFrame:
    """Rows whose (seeker, response) pair the scorer did not train on."""
    seen = set(scorer.meta.get("train_keys", []))
    keys = [pair_key(s, r) for s, r in zip(table["seeker_post"], table["response_post"])]
    return table[[k not in seen for k in keys]].reset_index(drop=True)
