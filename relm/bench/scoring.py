"""Score one run's test answers: parsed SER labels, UA/WA/macro-F1, EPITOME levels.

Knows scoring, not models: input is the per-utterance rows written by generation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from relm.bench.records import AnswerRow, Item, ScoredRow
from relm.config import Preset
from relm.data.schema import LABELS
from relm.metrics.table import EMPATHY_MECHANISMS, METRICS, computed_metrics, metric_names
from relm.results import ScorerInfo
from relm.runtime import Runtime
from relm.scoring import empathy, stats
from relm.scoring.congruence import congruence_row
from relm.scoring.empathy_base import EmpathyScorer
from relm.scoring.epitome_data import EpitomeData, check_epitome_folder, default_dir, load_epitome
from relm.scoring.responses import reply_metrics
from relm.scoring.ser import parse_emotion, ser_scores

SCORER_SEED = 0  # one scorer serves every run of a sweep; its seed is fixed and recorded


def load_scorer(
    preset: Preset, epitome: str | None, runtime: Runtime, force: bool = False
) -> tuple[EmpathyScorer | None, ScorerInfo]:
    """(scorer or None, info): the preset's one scorer kind, trained once when EPITOME data is found."""
    empathy.SCORERS.get(preset.scorer)  # an unknown kind fails here, with a suggestion
    folder = Path(epitome) if epitome else default_dir()
    if epitome:
        check_epitome_folder(folder)
    if not folder.is_dir():
        return None, {
            "available": False,
            "kind": preset.scorer,
            "reason": (
                f"EPITOME data not found at {folder} (pass --epitome DIR or set RELM_EPITOME_DIR; the CSVs are in "
                "github.com/behavioral-data/Empathy-Mental-Health, dataset/); empathy metrics are not reported"
            ),
        }
    data = load_epitome(folder)
    scorer = empathy.load_or_train(
        preset.scorer, data, seed=SCORER_SEED, force=force, device=runtime.device, **preset.scorer_params
    )
    val = scorer.meta["validation"]
    if any("confusion" not in v for v in val.values()):  # trained before relm kept it: the same held-out rows
        val = empathy.evaluate(scorer, empathy.unseen_rows(scorer, data.table))
    info: ScorerInfo = {
        "available": True,
        "identity": scorer.identity,
        "kind": scorer.kind,
        "params": scorer.params,
        "seed": SCORER_SEED,
        "training_data_hash": data.data_hash,
        "training_data": str(folder),
        "validation": {m: {k: v[k] for k in ("accuracy", "macro_f1", "n", "confusion")} for m, v in val.items()},
    }
    if preset.scorer_cv_folds:
        found = empathy.cross_validate(
            preset.scorer, data, preset.scorer_cv_folds, SCORER_SEED, runtime.device, **preset.scorer_params
        )
        info["cross_validation"] = {k: found[k] for k in ("folds", "n", *EMPATHY_MECHANISMS)}  # type: ignore[misc]
    return scorer, info


def _epitome_data(epitome: str | None) -> EpitomeData | None:
    """The EPITOME rows the scorers train on (`--epitome DIR`, else the default folder); None when absent."""
    folder = Path(epitome) if epitome else default_dir()
    return load_epitome(folder) if folder.is_dir() else None


def load_agreement_scorer(preset: Preset, epitome: str | None, runtime: Runtime) -> EmpathyScorer | None:
    """The preset's second scorer kind, trained once on the same EPITOME data (None when not asked for)."""
    data = _epitome_data(epitome) if preset.agreement_scorer else None
    if data is None:
        return None
    return empathy.load_or_train(preset.agreement_scorer, data, seed=SCORER_SEED, device=runtime.device)


def load_seed_scorers(preset: Preset, epitome: str | None, runtime: Runtime) -> dict[str, EmpathyScorer]:
    """The preset's kind trained with seeds 1 .. `scorer_seeds` - 1 on the same EPITOME rows (each cached)."""
    data = _epitome_data(epitome) if preset.scorer_seeds >= 2 else None
    if data is None:
        return {}
    return {
        f"seed {s}": empathy.load_or_train(
            preset.scorer, data, seed=SCORER_SEED + s, device=runtime.device, **preset.scorer_params
        )
        for s in range(1, preset.scorer_seeds)
    }


def cold_scorer_trainings(preset: Preset, epitome: str | None, force: bool = False) -> dict[str, int]:
    """Per scorer kind, the trainings a sweep of `preset` will run because the cache lacks them: its kind at each
    scorer seed, each cross-validation fold, and the agreement kind (none without EPITOME data); `force` (`--force
    score`) retrains the sweep's own scorer (seed 0) even when cached."""
    data = _epitome_data(epitome)
    if data is None:
        return {}
    data_hash, params = data.data_hash, preset.scorer_params
    needed = [
        empathy.trained_entry(preset.scorer, data_hash, SCORER_SEED + s, **params)
        for s in range(max(preset.scorer_seeds, 1))
    ]
    needed += [
        empathy.fold_entry(preset.scorer, params, data_hash, SCORER_SEED, preset.scorer_cv_folds, fold)
        for fold in range(preset.scorer_cv_folds)
    ]
    cold = {preset.scorer: sum(not entry.ready() for entry in needed) + (force and needed[0].ready())}
    if preset.agreement_scorer:
        agreement = empathy.trained_entry(preset.agreement_scorer, data_hash, SCORER_SEED)
        cold[preset.agreement_scorer] = cold.get(preset.agreement_scorer, 0) + (not agreement.ready())
    return {kind: n for kind, n in cold.items() if n}


def score_rows(answers: list[AnswerRow], scorer: EmpathyScorer | None) -> tuple[list[ScoredRow], dict]:
    """The answers with parsed SER labels, congruence, reply columns and EPITOME levels; and the run's metrics."""
    rows: list[ScoredRow] = [dict(a) for a in answers]  # type: ignore[misc]  # filled in below
    for r in rows:
        r["ser_label"] = parse_emotion(r["ser_answer"])
        r |= congruence_row(r["response"], r["gold_emotion"])  # type: ignore[typeddict-item]
    gold = [r["gold_emotion"] for r in rows]
    ser = ser_scores(gold, [r["ser_label"] for r in rows])
    metrics = {
        "ua": ser.ua,
        "wa": ser.wa,
        "macro_f1": ser.macro_f1,
        "n": ser.n,
        "n_unparseable": ser.n_unparseable,
        "confusion": ser.confusion,
        "labels": list(LABELS),
    }
    if rows and rows[0].get("ser_head"):
        head = ser_scores(gold, [r["ser_head"] for r in rows])
        metrics |= {"ua_head": head.ua, "wa_head": head.wa, "confusion_head": head.confusion}
    else:
        metrics["ua_head"] = None
    if rows and rows[0].get("avd_pred"):
        pred = np.array([r["avd_pred"] for r in rows])
        target = np.array([r["avd_target"] for r in rows])
        metrics["avd_mse"] = float(np.mean((pred - target) ** 2))
        metrics["avd_pearson"] = [
            float(np.corrcoef(pred[:, k], target[:, k])[0, 1]) if np.std(pred[:, k]) > 0 else float("nan")
            for k in range(3)
        ]
    for name in metric_names(family="congruence"):
        key = METRICS.get(name).item_key or name
        metrics[name] = float(np.mean([r[key] for r in rows])) if rows else float("nan")
    columns, replies = reply_metrics([r["response"] for r in rows], [r["transcript"] for r in rows])
    for name, values in columns.items():
        for r, v in zip(rows, values):
            r[name] = v
    metrics |= replies
    metrics["n_empty_responses"] = int(sum(w == 0 for w in columns["reply_words"]))
    if scorer is not None:
        levels = scorer.score([r["transcript"] for r in rows], [r["response"] for r in rows])
        for mech, vals in levels.items():
            for r, v in zip(rows, vals):
                r[mech] = int(v)
            metrics[mech] = float(np.mean(vals)) if len(vals) else float("nan")
            metrics[f"{mech}_levels"] = [float(np.mean(vals == k)) if len(vals) else 0.0 for k in (0, 1, 2)]
    else:
        for mech in EMPATHY_MECHANISMS:
            metrics[mech] = None
    for name in computed_metrics():  # metrics registered with a `row` function (plugins)
        metric = METRICS.get(name)
        for r in rows:
            r[metric.item_key or name] = float(metric.row(r))  # type: ignore[misc]
        metrics[name] = float(np.mean([r[metric.item_key or name] for r in rows])) if rows else float("nan")
    return rows, metrics


def teacher_replies(test_items: list[Item], n_transcripts: int = 3) -> dict:
    """The reply metrics of the step-1 targets of the test utterances (what the systems learned from), and the
    utterances of the report's sample table: the `n_transcripts` sentences said in the most emotions, one
    utterance per emotion each."""
    have = [(it["transcript"], reply) for it in test_items if (reply := it.get("target"))]
    metrics = reply_metrics([r for _, r in have], [t for t, _ in have])[1] | {"n": len(have)}
    emotions: dict[str, set[str]] = {}
    for it in test_items:
        emotions.setdefault(it["transcript"], set()).add(it["emotion_name"])
    chosen = sorted(emotions, key=lambda t: (-len(emotions[t]), t))[:n_transcripts]
    first: dict[tuple[str, str], Any] = {}
    for it in sorted(test_items, key=lambda it: str(it["utt_id"])):
        first.setdefault((it["transcript"], it["emotion_name"]), it)
    samples = [
        {"utt_id": str(found["utt_id"]), "transcript": t, "emotion": e, "target": found.get("target")}
        for t in chosen
        for e in LABELS
        if (found := first.get((t, e)))
    ]
    return metrics | {"samples": samples}


def teacher_reference(reference_rows: list[ScoredRow], targets: dict[str, str | None], scorer: EmpathyScorer) -> dict:
    """Step-1 expected responses vs a system's outputs on the same test utterances (paired): levels, congruence."""
    replies = {r["id"]: reply for r in reference_rows if (reply := targets.get(r["id"]))}
    rows = [r for r in reference_rows if r["id"] in replies]
    if not rows:
        return {"n": 0}
    levels = scorer.score([r["transcript"] for r in rows], [replies[r["id"]] for r in rows])
    out: dict = {"n": len(rows)}
    for mech, vals in levels.items():
        out[mech] = stats.compare(vals, [r[mech] for r in rows], n_resamples=5000)
    for name in metric_names(family="congruence"):
        key = METRICS.get(name).item_key or name
        teacher = [congruence_row(replies[r["id"]], r["gold_emotion"])[key] for r in rows]  # type: ignore[index]
        out[name] = stats.compare(teacher, [r[key] for r in rows], n_resamples=5000)
    return out
