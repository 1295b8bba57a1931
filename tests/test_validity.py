"""Comparisons a reviewer accepts: utterance-clustered tests, a declared family that stays put."""

from __future__ import annotations

import numpy as np
import pytest

from relm.bench.comparisons import adjust, compare_systems, proposed_vs_others
from relm.data.schema import LABELS


def _runs(n: int, n_seeds: int, accuracy: float, seed: int, levels: bool = True) -> list[list[dict]]:
    rng = np.random.default_rng(seed)
    gold = [LABELS[i % len(LABELS)] for i in range(n)]
    runs = []
    for s in range(n_seeds):
        rows = []
        for i in range(n):
            right = rng.random() < accuracy
            label = gold[i] if right else LABELS[(LABELS.index(gold[i]) + 1 + s) % len(LABELS)]
            row = {
                "id": f"u{i:03d}",
                "gold_emotion": gold[i],
                "ser_label": label,
                "response": f"r{i}-{s}-{right}-{seed}",
                "transcript": f"t{i}",
            }
            if levels:
                row |= {"er": int(rng.integers(0, 3)), "ip": int(rng.integers(0, 3)), "ex": int(rng.integers(0, 3))}
            rows.append(row)
        runs.append(rows)
    return runs


def test_identical_seed_copies_give_exactly_the_one_seed_p_and_ci():
    a, b = _runs(150, 1, 0.45, 1), _runs(150, 1, 0.35, 2)
    one = compare_systems(a, b)
    for k in (2, 3):
        copies = compare_systems(a * k, b * k)
        for metric in ("er", "ip", "ex", "ua", "wa"):
            for field in ("mean_a", "mean_b", "p_permutation", "ci95", "p_wilcoxon"):
                assert copies[metric][field] == one[metric][field], (k, metric, field)
            assert copies[metric]["n_items"] == 150 and copies[metric]["n_seeds_a"] == 1


def test_real_seeds_are_averaged_per_utterance_not_pooled():
    a, b = _runs(60, 3, 0.6, 3), _runs(60, 1, 0.4, 4)
    res = compare_systems(a, b)
    assert res["ua"]["n_items"] == 60 and res["ua"]["n_seeds_a"] == 3 and res["ua"]["n_seeds_b"] == 1
    correct = np.mean([[r["ser_label"] == r["gold_emotion"] for r in rows] for rows in a], axis=0)
    assert res["wa"]["mean_a"] == pytest.approx(correct.mean())
    with pytest.raises(Exception, match="different test utterances"):
        compare_systems(a, [b[0][:-1]])


def test_adding_a_system_or_a_dataset_leaves_the_confirmatory_p_unchanged():
    rows = {
        "text-zs": _runs(80, 1, 0.3, 5),
        "text": _runs(80, 1, 0.2, 6),
        "speech": _runs(80, 2, 0.4, 7),
        "re-llm": _runs(80, 2, 0.5, 8),
    }
    base_systems = ["text-zs", "text", "speech", "re-llm"]
    base = proposed_vs_others(rows, base_systems)
    family = adjust(base, base_systems)
    assert len(family) == 6
    more_systems = [*base_systems, "re-llm-noemb", "re-llm-noaux"]
    more = proposed_vs_others(
        rows | {"re-llm-noemb": _runs(80, 2, 0.45, 9), "re-llm-noaux": _runs(80, 2, 0.1, 10)}, more_systems
    )
    assert adjust(more, more_systems) == family
    for h in family:
        assert more[h["comparison"]][h["metric"]]["p_holm"] == base[h["comparison"]][h["metric"]]["p_holm"]
    # The text baseline and IP/WA are exploratory: BH, and they move when tests are added (that is allowed).
    assert "p_bh" in more["re-llm vs text"]["ua"] and "p_holm" not in more["re-llm vs re-llm-noemb"]["ua"]


class _FixedScorer:
    identity = "fixed-0"

    def __init__(self, levels):
        self.levels = levels

    def score(self, seekers, responses):
        return {m: __import__("numpy").array([self.levels(r)[m] for r in responses]) for m in ("er", "ip", "ex")}


def test_scorer_agreement_reports_kappa_and_direction_flips():
    from relm.bench.agreement import scorer_agreement

    rows = {"a": _runs(40, 1, 0.5, 11), "b": _runs(40, 1, 0.5, 12)}
    comps = proposed_vs_others(rows | {"re-llm": rows["a"]}, ["re-llm", "b"])
    same = _FixedScorer(lambda r: {})  # placeholder, replaced below
    by_response = {r["response"]: r for runs in rows.values() for rows_ in runs for r in rows_}
    same.levels = lambda resp: {m: by_response[resp][m] for m in ("er", "ip", "ex")}
    out = scorer_agreement({"re-llm": rows["a"], "b": rows["b"]}, comps, same)
    assert out["kappa"] == {"er": 1.0, "ip": 1.0, "ex": 1.0} and out["n"] == 80
    assert out["direction_disagreements"] == []
    flipped = _FixedScorer(lambda resp: {m: 2 - by_response[resp][m] for m in ("er", "ip", "ex")})
    out = scorer_agreement({"re-llm": rows["a"], "b": rows["b"]}, comps, flipped)
    assert out["kappa"]["er"] < 0 and {f["metric"] for f in out["direction_disagreements"]} <= {"er", "ip", "ex"}
    assert len(out["direction_disagreements"]) == sum(
        comps["re-llm vs b"][m]["mean_a"] != comps["re-llm vs b"][m]["mean_b"] for m in ("er", "ip", "ex")
    )
