"""Scorer agreement: do the conclusions depend on which empathy scorer read the replies?

The preset's `agreement_scorer` (another kind, trained once on the same EPITOME data) scores the
same test replies. results.json records Cohen's kappa per mechanism between the two scorers over
every (system, seed, utterance) reply, and every comparison whose direction (sign of the mean
difference) the two scorers disagree on; the report flags those comparisons.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import cohen_kappa_score

from relm.bench.records import ScoredRow
from relm.metrics.table import EMPATHY_MECHANISMS
from relm.scoring.empathy_base import EmpathyScorer


def scorer_agreement(rows_by_system: dict[str, list[list[ScoredRow]]], comparisons: dict, other: EmpathyScorer) -> dict:
    """Kappa per mechanism between the rows' levels (the preset's scorer) and `other`, and direction flips."""
    per_system = {system: [r for rows in runs for r in rows] for system, runs in rows_by_system.items()}
    flat = [r for rows in per_system.values() for r in rows]
    if not flat or EMPATHY_MECHANISMS[0] not in flat[0]:
        return {}
    theirs = other.score([r["transcript"] for r in flat], [r["response"] for r in flat])
    kappa = {}
    for mech in EMPATHY_MECHANISMS:
        ours = np.array([r[mech] for r in flat])
        same = bool(np.all(ours == theirs[mech]))
        kappa[mech] = 1.0 if same else float(cohen_kappa_score(ours, theirs[mech]))
    by_system, start = {}, 0
    for system, rows in per_system.items():
        by_system[system] = {m: theirs[m][start : start + len(rows)] for m in EMPATHY_MECHANISMS}
        start += len(rows)
    flips = []
    for name, per_metric in comparisons.items():
        a, b = name.split(" vs ", 1)
        for mech in EMPATHY_MECHANISMS:
            if mech not in per_metric or a not in by_system or b not in by_system:
                continue
            ours_diff = per_metric[mech]["mean_a"] - per_metric[mech]["mean_b"]
            theirs_diff = float(by_system[a][mech].mean() - by_system[b][mech].mean())
            if np.sign(ours_diff) != np.sign(theirs_diff):
                flips.append(
                    {
                        "comparison": name,
                        "metric": mech,
                        "difference": ours_diff,
                        "difference_other_scorer": theirs_diff,
                    }
                )
    return {"other_scorer": other.identity, "n": len(flat), "kappa": kappa, "direction_disagreements": flips}
