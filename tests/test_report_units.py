"""Small pure functions that decide what a reader sees: marks, Holm application, tolerances, teacher cleaning."""

from __future__ import annotations

import pytest

from relm.bench.comparisons import add_holm
from relm.bench.regression import DEFAULT_TOLERANCE, tolerances
from relm.bench.report import proposed_mark, significance_mark
from relm.bench.teacher import clean
from relm.errors import RelmError
from relm.scoring import stats


@pytest.mark.parametrize(
    ("p", "mark"), [(None, ""), (0.2, ""), (0.05, ""), (0.049, "*"), (0.01, "*"), (0.0099, "**"), (0.0, "**")]
)
def test_significance_marks(p, mark):
    assert significance_mark(p) == mark


def test_proposed_is_marked_only_when_better_than_every_other_system():
    comps = {
        "re-llm vs a": {"ua": {"mean_a": 0.6, "mean_b": 0.4, "p_holm": 0.004}},
        "re-llm vs b": {"ua": {"mean_a": 0.6, "mean_b": 0.5, "p_holm": 0.03}},
    }
    assert proposed_mark("ua", comps, "re-llm") == "*"  # the weakest p decides
    comps["re-llm vs b"]["ua"]["mean_b"] = 0.7
    assert proposed_mark("ua", comps, "re-llm") == ""  # worse than b: no mark, however small p is
    assert proposed_mark("er", comps, "re-llm") == ""  # not tested


def test_holm_is_applied_to_each_metrics_primary_p_across_the_sweep():
    comps = {
        "d1": {
            "x vs y": {
                "er": {"p_permutation": 0.01, "p_wilcoxon": 0.9},
                "wa": {"p_mcnemar": 0.04, "p_permutation": None},
            }
        },
        "d2": {"x vs y": {"ua": {"p_permutation": 0.03}, "macro_f1": {"p_permutation": 0.001}}},
    }
    add_holm(comps)
    expected = stats.holm([0.01, 0.04, 0.03])  # wa uses McNemar; macro_f1 has no primary test
    got = [
        comps["d1"]["x vs y"]["er"]["p_holm"],
        comps["d1"]["x vs y"]["wa"]["p_holm"],
        comps["d2"]["x vs y"]["ua"]["p_holm"],
    ]
    assert got == expected == pytest.approx([0.03, 0.06, 0.06])
    assert "p_holm" not in comps["d2"]["x vs y"]["macro_f1"]


def test_holm_and_bh_by_hand():
    assert stats.holm([0.01, 0.02, 0.03, 0.5]) == pytest.approx([0.04, 0.06, 0.06, 0.5])
    assert stats.benjamini_hochberg([0.01, 0.02, 0.03, 0.5]) == pytest.approx([0.04, 0.04, 0.04, 0.5])
    assert stats.holm([]) == [] and stats.benjamini_hochberg([]) == []


def test_tolerance_parsing():
    tol = tolerances({"tolerances": {"ua": 0.1}}, ["er=0.2", "wa=0"])
    assert tol["ua"] == 0.1 and tol["er"] == 0.2 and tol["wa"] == 0.0 and tol["ip"] == DEFAULT_TOLERANCE
    with pytest.raises(RelmError, match="unknown metric 'bleu'"):
        tolerances({}, ["bleu=0.1"])
    with pytest.raises(RelmError, match="expected METRIC=NUMBER"):
        tolerances({}, ["ua=lots"])


@pytest.mark.parametrize(
    ("raw", "truncated", "expected"),
    [
        ('  "That sounds hard. How are you?"  ', False, "That sounds hard. How are you?"),
        ("I'm sorry, but I cannot help with that.", False, None),
        ("As an AI language model, I feel nothing.", False, None),
        ("", False, None),
        ("First line.\nSecond line.", False, "First line."),
        ("That is great news. Where will you go next and what will you", True, "That is great news."),
        ("No sentence end at all", True, "No sentence end at all"),
        ("Wow! Really? Tell me", True, "Wow! Really?"),
    ],
)
def test_teacher_clean(raw, truncated, expected):
    assert clean(raw, truncated) == expected
