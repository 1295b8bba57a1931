"""Score one system's test answers, and compare systems with paired tests.

Knows scoring, not models: input is the per-sample rows written by generation.
"""

from __future__ import annotations

import numpy as np

from relm.data.schema import LABELS
from relm.scoring import stats
from relm.scoring.ser import parse_emotion, ser_scores

EMPATHY = ("er", "ip", "ex")


def score_rows(rows: list[dict], scorer) -> tuple[list[dict], dict]:
    """Add parsed SER labels and EPITOME levels to the rows; return (rows, metrics)."""
    for r in rows:
        r["ser_label"] = parse_emotion(r["ser_answer"])
    gold = [r["gold_emotion"] for r in rows]
    ser = ser_scores(gold, [r["ser_label"] for r in rows])
    metrics = {"ua": ser.ua, "wa": ser.wa, "macro_f1": ser.macro_f1, "n": ser.n,
               "n_unparseable": ser.n_unparseable, "confusion": ser.confusion, "labels": list(LABELS)}
    if rows and rows[0].get("ser_head"):
        head = ser_scores(gold, [r["ser_head"] for r in rows])
        metrics |= {"ua_head": head.ua, "wa_head": head.wa, "confusion_head": head.confusion}
    else:
        metrics["ua_head"] = None
    if rows and rows[0].get("avd_pred"):
        pred = np.array([r["avd_pred"] for r in rows])
        target = np.array([r["avd_target"] for r in rows])
        metrics["avd_mse"] = float(np.mean((pred - target) ** 2))
        metrics["avd_pearson"] = [float(np.corrcoef(pred[:, k], target[:, k])[0, 1]) if np.std(pred[:, k]) > 0
                                  else float("nan") for k in range(3)]
    words = [len(r["response"].split()) for r in rows]
    metrics["response_words_mean"] = float(np.mean(words)) if words else 0.0
    metrics["n_empty_responses"] = int(sum(w == 0 for w in words))
    if scorer is not None:
        levels = scorer.score([r["transcript"] for r in rows], [r["response"] for r in rows])
        for mech, vals in levels.items():
            key = mech.lower()
            for r, v in zip(rows, vals):
                r[key] = int(v)
            metrics[key] = float(np.mean(vals)) if len(vals) else float("nan")
            metrics[f"{key}_levels"] = [float(np.mean(vals == k)) if len(vals) else 0.0 for k in (0, 1, 2)]
    else:
        for key in EMPATHY:
            metrics[key] = None
    return rows, metrics


def compare_systems(a_rows: list[list[dict]], b_rows: list[list[dict]], seed: int = 0, n_resamples: int = 10000
                    ) -> dict:
    """System a vs b over the same utterances; each argument holds one row list per seed.

    EPITOME levels are averaged over seeds per utterance, then tested pairwise; UA and WA
    pool the (utterance, seed) pairs.
    """
    ids = [r["id"] for r in a_rows[0]]
    if sorted(ids) != sorted(r["id"] for r in b_rows[0]):
        raise ValueError("systems answered different test utterances; cannot pair")
    order = {u: i for i, u in enumerate(ids)}

    def aligned(runs):
        return [sorted(rows, key=lambda r: order[r["id"]]) for rows in runs]

    a_runs, b_runs = aligned(a_rows), aligned(b_rows)
    out = {}
    if "er" in a_runs[0][0] and "er" in b_runs[0][0]:
        for key in EMPATHY:
            a = np.mean([[r[key] for r in rows] for rows in a_runs], axis=0)
            b = np.mean([[r[key] for r in rows] for rows in b_runs], axis=0)
            out[key] = stats.compare(a, b, n_resamples, seed)
    n = min(len(a_runs), len(b_runs))
    gold = [r["gold_emotion"] for rows in a_runs[:n] for r in rows]
    pa = [r["ser_label"] for rows in a_runs[:n] for r in rows]
    pb = [r["ser_label"] for rows in b_runs[:n] for r in rows]
    ua = stats.ua_difference_test(gold, pa, pb, n_resamples, seed)
    ua_a, ua_b = ser_scores(gold, pa).ua, ser_scores(gold, pb).ua
    out["ua"] = {"mean_a": ua_a, "mean_b": ua_b, "relative_improvement": stats.relative_improvement(ua_a, ua_b),
                 "absolute_difference": ua["difference"], "p_wilcoxon": None,
                 "p_permutation": ua["p_permutation"], "ci95": ua["ci95"]}
    ca, cb = np.array(pa) == np.array(gold), np.array(pb) == np.array(gold)
    out["wa"] = {"mean_a": float(ca.mean()), "mean_b": float(cb.mean()),
                 "relative_improvement": stats.relative_improvement(float(ca.mean()), float(cb.mean())),
                 "p_mcnemar": stats.mcnemar(ca, cb), "p_wilcoxon": None, "p_permutation": None,
                 "ci95": list(stats.bootstrap_ci(ca.astype(float), cb.astype(float), n_resamples, seed))}
    return out


def add_holm(comparisons: dict) -> None:
    """Holm-adjust every p-value of the sweep's family (the primary test of each comparison)."""
    refs = []
    for per_pair in comparisons.values():
        for per_metric in per_pair.values():
            for metric, res in per_metric.items():
                p = res.get("p_permutation") if metric != "wa" else res.get("p_mcnemar")
                if p is not None:
                    refs.append((res, p))
    for (res, _), adj in zip(refs, stats.holm([p for _, p in refs])):
        res["p_holm"] = adj
