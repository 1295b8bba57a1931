"""Empathy conclusions against the scorer's own uncertainty (`relm.bench.robustness`), with scorers whose levels are
known: one that agrees with the sweep's scorer, one that reverses a comparison."""

from __future__ import annotations

import numpy as np
import pytest

from relm.bench.comparisons import adjust, proposed_vs_others
from relm.bench.robustness import robustness_lines, robustness_mark, scorer_robustness

N = 40


def _rows(system: str, er: int) -> list[list[dict]]:
    rng = np.random.default_rng(len(system))
    return [
        [
            {
                "id": f"u{i:02d}",
                "transcript": f"t{i}",
                "gold_emotion": "happy",
                "ser_label": "happy",
                "response": f"{system} reply {i}",
                "er": er,
                "ip": int(rng.integers(0, 3)),
                "ex": 1,
            }
            for i in range(N)
        ]
    ]


class _Scorer:
    """Levels by reply: `er` per system as given, `ip` and `ex` as the sweep's scorer read them."""

    def __init__(self, identity: str, er: dict[str, int], rows: dict):
        self.identity, self.er = identity, er
        self.by_reply = {r["response"]: r for runs in rows.values() for rs in runs for r in rs}

    def score(self, seekers, responses):
        return {
            "er": np.array([self.er[r.split()[0]] for r in responses]),
            "ip": np.array([self.by_reply[r]["ip"] for r in responses]),
            "ex": np.array([self.by_reply[r]["ex"] for r in responses]),
        }


@pytest.fixture
def sweep():
    rows = {"re-llm": _rows("re-llm", 2), "speech": _rows("speech", 0), "text": _rows("text", 1)}
    comparisons = proposed_vs_others(rows, list(rows))
    adjust(comparisons, list(rows))
    return rows, comparisons


def test_a_scorer_that_agrees_keeps_every_conclusion_robust(sweep):
    rows, comps = sweep
    same = _Scorer("same-1", {"re-llm": 2, "speech": 0, "text": 1}, rows)
    record = scorer_robustness(rows, comps, list(rows), {"seed 1": same}, {})  # type: ignore[dict-item]
    er = comps["re-llm vs speech"]["er"]
    assert er["robust"] and er["confirmatory"] and record["fragile"] == []
    assert robustness_mark(er) == ", robust"  # significant under every scorer
    assert er["by_scorer"]["seed 1"] == {"difference": 2.0, "p_adjusted": er["p_holm"]}  # recomputed exactly
    assert record["spread"]["re-llm"]["er"] == {"mean": 2.0, "sd": 0.0, "min": 2.0, "max": 2.0}
    assert record["scorers"] == {"seed 1": "same-1"} and record["scorer_seeds"] == 2


def test_a_scorer_that_reverses_a_comparison_makes_it_scorer_fragile(sweep):
    rows, comps = sweep
    same = _Scorer("same-1", {"re-llm": 2, "speech": 0, "text": 1}, rows)
    reversed_ = _Scorer("other-kind", {"re-llm": 0, "speech": 2, "text": 1}, rows)
    record = scorer_robustness(rows, comps, list(rows), {"seed 1": same}, {"agreement (x)": reversed_})  # type: ignore[dict-item]
    er = comps["re-llm vs speech"]["er"]
    assert not er["robust"] and er["by_scorer"]["agreement (x)"]["difference"] == -2.0
    assert {"comparison": "re-llm vs speech", "metric": "er", "confirmatory": True} in record["fragile"]
    assert not comps["re-llm vs text"]["er"]["robust"]  # +1 under ours, -1 under the other kind
    assert comps["re-llm vs speech"]["ex"]["robust"]  # every scorer reads EX alike (no difference, not significant)
    assert record["spread"]["re-llm"]["er"]["sd"] == 0.0  # the spread is over scorer seeds, not other kinds
    lines = "\n".join(robustness_lines({"scorer_robustness": {"d": record}, "comparisons": {"d": comps}}))
    assert "Scorer-fragile" in lines and "re-llm vs speech ER (confirmatory)" in lines
    # a conclusion that holds because no scorer finds a difference is said to be a null one
    assert "significant each time: none; never significant (no difference shown): re-llm vs speech IP, " in lines
    assert robustness_mark(comps["re-llm vs speech"]["ex"]) == ", robust n.s."
    assert robustness_mark(comps["re-llm vs speech"]["er"]) == ", **scorer-fragile**"
    assert robustness_mark(comps["re-llm vs speech"]["ua"]) == ""  # no scorer reads SER answers


def test_the_spread_over_scorer_seeds(sweep):
    rows, comps = sweep
    low = _Scorer("seed-1", {"re-llm": 0, "speech": 0, "text": 1}, rows)
    record = scorer_robustness(rows, comps, list(rows), {"seed 1": low}, {})  # type: ignore[dict-item]
    spread = record["spread"]["re-llm"]["er"]
    assert spread == {"mean": 1.0, "sd": pytest.approx(np.std([2.0, 0.0], ddof=1)), "min": 0.0, "max": 2.0}
    assert not comps["re-llm vs speech"]["er"]["robust"]  # the difference vanishes: no longer significant
