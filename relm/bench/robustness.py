"""Empathy conclusions against the scorer's own uncertainty.

The same test replies are scored again by the preset's scorer kind trained with other seeds (`scorer_seeds`:
another seeker-grouped split of the EPITOME rows and another initialisation; cached like the first) and by the
`agreement_scorer` kind. Every empathy comparison is recomputed under each (the same paired tests, and the same
Holm family and BH set: the other metrics' p values do not depend on the scorer and are kept). A comparison is
`robust` when the sign of its difference and whether it is significant (adjusted p < 0.05) are the same under
every scorer as under the sweep's own; otherwise it is scorer-fragile, and the report says so in words.
Per system, `scorer_spread` gives each empathy metric's mean, sd, min and max over the scorer seeds.
"""

from __future__ import annotations

import numpy as np

from relm.bench.comparisons import adjust, compare_systems
from relm.bench.records import ScoredRow
from relm.metrics.table import EMPATHY_MECHANISMS
from relm.results import Results
from relm.scoring.empathy_base import EmpathyScorer

ALPHA = 0.05  # significant: adjusted p below this, as in the report's marks


def rescored(rows_by_system: dict[str, list[list[ScoredRow]]], scorer: EmpathyScorer) -> dict:
    """The rows with their EPITOME levels replaced by `scorer`'s (one call over every reply)."""
    flat = [r for runs in rows_by_system.values() for rows in runs for r in rows]
    levels = scorer.score([r["transcript"] for r in flat], [r["response"] for r in flat])
    out: dict[str, list[list[ScoredRow]]] = {}
    k = 0
    for system, runs in rows_by_system.items():
        out[system] = []
        for rows in runs:
            copies = []
            for r in rows:
                copies.append(r | {m: int(levels[m][k]) for m in EMPATHY_MECHANISMS})
                k += 1
            out[system].append(copies)
    return out


def adjusted_p(result: dict) -> float | None:
    return result.get("p_holm", result.get("p_bh"))


def _verdict(result: dict) -> tuple[float, bool]:
    p = adjusted_p(result)
    return float(np.sign(result["mean_a"] - result["mean_b"])), p is not None and p < ALPHA


def _comparisons_under(rows: dict, main: dict, systems: list[str]) -> dict:
    """The sweep's comparisons with the empathy metrics recomputed on `rows`, then adjusted as the sweep's are."""
    out = {}
    for name, per_metric in main.items():
        a, b = name.split(" vs ", 1)
        recomputed = compare_systems(rows[a], rows[b], metrics=EMPATHY_MECHANISMS)
        out[name] = {m: dict(res) for m, res in per_metric.items() if m not in EMPATHY_MECHANISMS} | recomputed
    adjust(out, systems)  # type: ignore[arg-type]
    return out


def scorer_spread(rows_by_scorer: dict[str, dict]) -> dict[str, dict[str, dict[str, float]]]:
    """{system: {mechanism: mean, sd, min, max over the scorers}} of the mean level (over seeds and replies)."""
    systems = next(iter(rows_by_scorer.values()))
    out: dict[str, dict[str, dict[str, float]]] = {}
    for system in systems:
        out[system] = {}
        for mech in EMPATHY_MECHANISMS:
            means = np.array(
                [np.mean([r[mech] for rows in by[system] for r in rows]) for by in rows_by_scorer.values()]
            )
            sd = float(np.std(means, ddof=1)) if len(means) > 1 else 0.0
            out[system][mech] = {
                "mean": float(means.mean()),
                "sd": sd,
                "min": float(means.min()),
                "max": float(means.max()),
            }
    return out


def scorer_robustness(
    rows_by_system: dict[str, list[list[ScoredRow]]],
    comparisons: dict,
    systems: list[str],
    seed_scorers: dict[str, EmpathyScorer],
    other_scorers: dict[str, EmpathyScorer],
) -> dict:
    """Mark every empathy comparison `robust` or not, adding `by_scorer` (difference, adjusted p under each
    scorer) to it in place; returns the dataset's record: scorers, spread per system, the fragile comparisons."""
    if not comparisons or not rows_by_system or EMPATHY_MECHANISMS[0] not in next(iter(rows_by_system.values()))[0][0]:
        return {}
    rows = {label: rescored(rows_by_system, s) for label, s in (seed_scorers | other_scorers).items()}
    under = {label: _comparisons_under(r, comparisons, systems) for label, r in rows.items()}
    fragile = []
    for name, per_metric in comparisons.items():
        for mech in EMPATHY_MECHANISMS:
            if mech not in per_metric:
                continue
            main = per_metric[mech]
            by_scorer = {
                label: {
                    "difference": c[name][mech]["mean_a"] - c[name][mech]["mean_b"],
                    "p_adjusted": adjusted_p(c[name][mech]),
                }
                for label, c in under.items()
            }
            robust = all(_verdict(c[name][mech]) == _verdict(main) for c in under.values())
            main["by_scorer"], main["robust"] = by_scorer, robust
            if not robust:
                fragile.append({"comparison": name, "metric": mech, "confirmatory": bool(main.get("confirmatory"))})
    spread = scorer_spread({"sweep": rows_by_system} | {k: rows[k] for k in seed_scorers})
    return {
        "scorers": {label: s.identity for label, s in (seed_scorers | other_scorers).items()},
        "scorer_seeds": 1 + len(seed_scorers),
        "spread": spread,
        "fragile": fragile,
    }


def record_robustness(
    results: Results,
    dataset: str,
    rows_by_system: dict[str, list[list[ScoredRow]]],
    seed_scorers: dict[str, EmpathyScorer],
    other_scorers: dict[str, EmpathyScorer],
) -> None:
    """`scorer_robustness` for one dataset, filed in results: the record, and `scorer_spread` in each metrics row."""
    comparisons = results["comparisons"].get(dataset, {})
    record = scorer_robustness(rows_by_system, comparisons, results["systems"], seed_scorers, other_scorers)
    results.setdefault("scorer_robustness", {})[dataset] = record
    for system, spread in record.get("spread", {}).items():
        results["metrics"][dataset][system]["scorer_spread"] = spread


def robustness_mark(result: dict) -> str:
    """The comparison table's word: robust (and whether significant under every scorer or under none), or
    scorer-fragile; nothing for a metric no scorer reads."""
    if "robust" not in result:
        return ""
    if not result["robust"]:
        return ", **scorer-fragile**"
    return ", robust" if _verdict(result)[1] else ", robust n.s."


def robustness_lines(results: dict) -> list[str]:
    """The report's words: which empathy conclusions hold under every scorer, which are scorer-fragile."""
    out = []
    for d, rec in results.get("scorer_robustness", {}).items():
        if not rec:
            continue
        scorers = ", ".join(f"{label} (`{identity}`)" for label, identity in rec["scorers"].items())
        comps = results["comparisons"].get(d, {})
        held: dict[bool, list[str]] = {True: [], False: []}  # by: significant under every scorer
        for name, per in comps.items():
            for m in EMPATHY_MECHANISMS:
                if per.get(m, {}).get("robust"):
                    held[_verdict(per[m])[1]].append(f"{name} {m.upper()}")
        out.append(f"- {d}: rescored by {scorers}.")
        if rec["fragile"]:
            words = "; ".join(
                f"{f['comparison']} {f['metric'].upper()}{' (confirmatory)' if f['confirmatory'] else ''}"
                for f in rec["fragile"]
            )
            out.append(f"  **Scorer-fragile (sign or significance changes under another scorer): {words}.**")
        out.append(
            f"  Robust under every scorer: significant each time: {', '.join(held[True]) or 'none'}; "
            f"never significant (no difference shown): {', '.join(held[False]) or 'none'}."
        )
        for system, per in rec["spread"].items():
            cells = ", ".join(f"{m.upper()} {v['mean']:.3f} ± {v['sd']:.3f}" for m, v in per.items())
            out.append(f"  - {system}, mean ± sd over {rec['scorer_seeds']} scorer seeds: {cells}")
    return out
