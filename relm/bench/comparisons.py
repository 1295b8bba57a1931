"""Paired comparisons between systems that answered the same test utterances, and the Holm family."""

from __future__ import annotations

import numpy as np

from relm.errors import RelmError
from relm.metrics.table import EMPATHY_MECHANISMS, METRICS
from relm.models.system_table import systems_with_role
from relm.results import Comparison
from relm.scoring import stats
from relm.scoring.ser import ser_scores


def compare_systems(
    a_rows: list[list[dict]], b_rows: list[list[dict]], seed: int = 0, n_resamples: int = 10000
) -> dict[str, Comparison]:
    """System a vs b over the same utterances; each argument holds one row list per seed.

    EPITOME levels are averaged over seeds per utterance, then tested pairwise; UA and WA
    pool the (utterance, seed) pairs.
    """
    ids = [r["id"] for r in a_rows[0]]
    if sorted(ids) != sorted(r["id"] for r in b_rows[0]):
        raise RelmError("the two systems answered different test utterances; they cannot be paired")
    order = {u: i for i, u in enumerate(ids)}

    def aligned(runs):
        return [sorted(rows, key=lambda r: order[r["id"]]) for rows in runs]

    a_runs, b_runs = aligned(a_rows), aligned(b_rows)
    out: dict[str, Comparison] = {}
    if EMPATHY_MECHANISMS[0] in a_runs[0][0] and EMPATHY_MECHANISMS[0] in b_runs[0][0]:
        for key in EMPATHY_MECHANISMS:
            a = np.mean([[r[key] for r in rows] for rows in a_runs], axis=0)
            b = np.mean([[r[key] for r in rows] for rows in b_runs], axis=0)
            out[key] = stats.compare(a, b, n_resamples, seed)  # type: ignore[assignment]
    n = min(len(a_runs), len(b_runs))
    gold = [r["gold_emotion"] for rows in a_runs[:n] for r in rows]
    pa = [r["ser_label"] for rows in a_runs[:n] for r in rows]
    pb = [r["ser_label"] for rows in b_runs[:n] for r in rows]
    ua = stats.ua_difference_test(gold, pa, pb, n_resamples, seed)
    ua_a, ua_b = ser_scores(gold, pa).ua, ser_scores(gold, pb).ua
    out["ua"] = {
        "mean_a": ua_a,
        "mean_b": ua_b,
        "relative_improvement": stats.relative_improvement(ua_a, ua_b),
        "absolute_difference": ua["difference"],
        "p_wilcoxon": None,
        "p_permutation": ua["p_permutation"],
        "ci95": ua["ci95"],
    }
    ca, cb = np.array(pa) == np.array(gold), np.array(pb) == np.array(gold)
    out["wa"] = {
        "mean_a": float(ca.mean()),
        "mean_b": float(cb.mean()),
        "relative_improvement": stats.relative_improvement(float(ca.mean()), float(cb.mean())),
        "p_mcnemar": stats.mcnemar(ca, cb),
        "p_wilcoxon": None,
        "p_permutation": None,
        "ci95": list(stats.bootstrap_ci(ca.astype(float), cb.astype(float), n_resamples, seed)),
    }
    return out


def comparison_name(a: str, b: str) -> str:
    return f"{a} vs {b}"


def proposed_vs_others(
    rows_by_system: dict[str, list[list[dict]]], systems: list[str]
) -> dict[str, dict[str, Comparison]]:
    """The proposed system against every other system of the sweep (empty when it did not run)."""
    proposed = [s for s in systems_with_role("proposed", systems) if s in rows_by_system]
    return {
        comparison_name(p, other): compare_systems(rows_by_system[p], rows_by_system[other])
        for p in proposed
        for other in systems
        if other != p and other in rows_by_system
    }


def add_holm(comparisons: dict) -> None:
    """Holm-adjust every primary p-value (the metric table's `primary_test`) of the sweep's family."""
    refs: list[tuple[dict, float]] = []
    for per_pair in comparisons.values():
        for per_metric in per_pair.values():
            for metric, res in per_metric.items():
                p = METRICS.get(metric).primary_p(res)
                if p is not None:
                    refs.append((res, p))
    for (res, _), adjusted in zip(refs, stats.holm([p for _, p in refs])):
        res["p_holm"] = adjusted
