"""Paired comparisons between systems that answered the same test utterances, and the declared family.

The utterance is the unit of replication: a system's seeds are averaged per utterance (EPITOME
levels, SER correctness) before any test, and a resample moves all of an utterance's seeds
together. A system whose seeds answered identically (a zero-shot system) counts once.

The confirmatory family, per dataset, is the proposed system against each paper baseline on the
confirmatory metrics (`relm ls metrics`), Holm-adjusted (`p_holm`); it does not change when an
exploratory system (`text`, the ablations) or a dataset is added. The paper baselines are `text-zs`,
`speech` and, where the preset starts from the BLSP-Emo release (paper), `blsp-emo`: running it adds its
three hypotheses to the family. Every other comparison is exploratory, BH-adjusted (`p_bh`).
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from relm.bench.records import ScoredRow
from relm.errors import RelmError
from relm.metrics.table import METRICS
from relm.models.system_table import SYSTEMS, systems_with_role
from relm.results import Comparison
from relm.scoring import stats
from relm.scoring.ser import ua_matrix


def distinct_seeds(runs: list[list[ScoredRow]]) -> list[list[ScoredRow]]:
    """All seeds, or just one when every seed gave the same answers (a deterministic system)."""

    def answers(rows):
        return [(r["id"], r["response"], r["ser_label"]) for r in rows]

    first = answers(runs[0])
    return runs[:1] if all(answers(rows) == first for rows in runs[1:]) else runs


def per_utterance(runs: list[list[ScoredRow]], ids: list[str]) -> dict[str, np.ndarray]:
    """Seed-averaged per-utterance scores: SER correctness, and every per-item field the rows carry
    (EPITOME levels when scored, congruence)."""
    by_id = [{r["id"]: r for r in rows} for rows in runs]
    out = {
        "correct": np.array([np.mean([run[u]["ser_label"] == run[u]["gold_emotion"] for run in by_id]) for u in ids])
    }
    for _, metric in METRICS.items():
        key = metric.item_key
        if key and key not in out and all(key in run[ids[0]] for run in by_id):
            out[key] = np.array([np.mean([run[u][key] for run in by_id]) for u in ids], dtype=float)
    return out


def _ua(gold: np.ndarray, a: dict, b: dict, n_resamples: int, seed: int) -> Comparison:
    test = stats.ua_difference_test(gold, a["correct"], b["correct"], n_resamples, seed)
    ua_a, ua_b = (float(ua_matrix(gold, x["correct"][None])[0]) for x in (a, b))
    return {
        "mean_a": ua_a,
        "mean_b": ua_b,
        "relative_improvement": stats.relative_improvement(ua_a, ua_b),
        "absolute_difference": test["difference"],
        # per-utterance correctness (the share of seeds right), as a per-utterance paired test would read UA
        "p_wilcoxon": stats.wilcoxon(a["correct"], b["correct"]),
        "p_wilcoxon_zsplit": stats.wilcoxon(a["correct"], b["correct"], "zsplit"),
        "p_permutation": test["p_permutation"],
        "ci95": test["ci95"],
    }


def compare_systems(
    a_runs: list[list[ScoredRow]],
    b_runs: list[list[ScoredRow]],
    seed: int = 0,
    n_resamples: int = 10000,
    metrics: Collection[str] | None = None,
) -> dict[str, Comparison]:
    """System a vs b over the same utterances (each argument holds one row list per seed), on every tested metric
    or on `metrics`."""
    ids = sorted(r["id"] for r in a_runs[0])
    for runs in (a_runs, b_runs):
        if any(sorted(r["id"] for r in rows) != ids for rows in runs):
            raise RelmError("the two systems answered different test utterances; they cannot be paired")
    a_runs, b_runs = distinct_seeds(a_runs), distinct_seeds(b_runs)
    a, b = per_utterance(a_runs, ids), per_utterance(b_runs, ids)
    sizes = {"n_items": len(ids), "n_seeds_a": len(a_runs), "n_seeds_b": len(b_runs)}
    gold_of = {r["id"]: r["gold_emotion"] for r in a_runs[0]}
    gold = np.array([gold_of[u] for u in ids])
    out: dict[str, Comparison] = {}
    for name, metric in METRICS.items():
        if metrics is not None and name not in metrics:
            continue
        if name == "ua":  # a mean of per-class recalls: recomputed per resample, not a per-item mean
            out[name] = _ua(gold, a, b, n_resamples, seed) | sizes  # type: ignore[assignment]
        elif metric.primary_test and metric.item_key in a and metric.item_key in b:
            key = metric.item_key
            out[name] = stats.compare(a[key], b[key], n_resamples, seed) | sizes  # type: ignore[assignment]
    return out


def comparison_name(a: str, b: str) -> str:
    return f"{a} vs {b}"


def proposed_vs_others(
    rows_by_system: dict[str, list[list[ScoredRow]]], systems: list[str]
) -> dict[str, dict[str, Comparison]]:
    """The proposed system against every other system of the sweep (empty when it did not run)."""
    proposed = [s for s in systems_with_role("proposed", systems) if s in rows_by_system]
    return {
        comparison_name(p, other): compare_systems(rows_by_system[p], rows_by_system[other])
        for p in proposed
        for other in systems
        if other != p and other in rows_by_system
    }


def hypotheses(systems: list[str]) -> list[dict]:
    """The confirmatory family of one dataset: proposed vs each paper baseline, on each confirmatory metric."""
    return [
        {"comparison": comparison_name(p, b), "metric": m, "test": METRICS.get(m).primary_test}
        for p in systems_with_role("proposed", systems)
        for b in systems
        if b in SYSTEMS and SYSTEMS.get(b).paper_baseline
        for m, metric in METRICS.items()
        if metric.confirmatory
    ]


def adjust(comparisons: dict[str, dict[str, Comparison]], systems: list[str]) -> list[dict]:
    """Holm within the confirmatory family, BH over everything else tested; returns the family."""
    family = [h for h in hypotheses(systems) if h["metric"] in comparisons.get(h["comparison"], {})]
    keys = {(h["comparison"], h["metric"]) for h in family}
    confirmatory: list[tuple] = []
    exploratory: list[tuple] = []
    for name, per_metric in comparisons.items():
        for metric, res in per_metric.items():
            p = METRICS.get(metric).primary_p(res)  # type: ignore[arg-type]
            res["confirmatory"] = (name, metric) in keys  # type: ignore[typeddict-unknown-key]
            if p is not None:
                (confirmatory if (name, metric) in keys else exploratory).append((res, p))
    for res, adjusted in zip([r for r, _ in confirmatory], stats.holm([p for _, p in confirmatory]), strict=True):
        res["p_holm"] = adjusted
    for res, adjusted in zip(
        [r for r, _ in exploratory], stats.benjamini_hochberg([p for _, p in exploratory]), strict=True
    ):
        res["p_bh"] = adjusted  # type: ignore[typeddict-unknown-key]
    return family
