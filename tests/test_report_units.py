"""Small pure functions that decide what a reader sees: marks, Holm application, tolerances, teacher cleaning."""

from __future__ import annotations

import pytest

from relm.bench.comparisons import adjust
from relm.bench.regression import tolerances
from relm.bench.report import baseline_mark, significance_mark
from relm.bench.teacher import clean
from relm.errors import RelmError
from relm.metrics.table import METRICS
from relm.scoring import stats


@pytest.mark.parametrize(
    ("p", "mark"), [(None, ""), (0.2, ""), (0.05, ""), (0.049, "*"), (0.01, "*"), (0.0099, "**"), (0.0, "**")]
)
def test_significance_marks(p, mark):
    assert significance_mark(p) == mark


def test_each_baseline_is_marked_by_its_own_comparison():
    comps = {
        "re-llm vs a": {"ua": {"mean_a": 0.6, "mean_b": 0.4, "p_holm": 0.004, "confirmatory": True}},
        "re-llm vs b": {"ua": {"mean_a": 0.6, "mean_b": 0.5, "p_holm": 0.03, "confirmatory": True}},
        "re-llm vs c": {"ua": {"mean_a": 0.6, "mean_b": 0.1, "p_bh": 0.001, "confirmatory": False}},
    }
    assert [baseline_mark("ua", comps, "re-llm", s) for s in "abc"] == ["**", "*", ""]  # c is exploratory
    comps["re-llm vs b"]["ua"]["mean_b"] = 0.7
    assert baseline_mark("ua", comps, "re-llm", "b") == ""  # worse than b: no mark, however small p is
    assert baseline_mark("ua", comps, "re-llm", "a") == "**"  # a's mark does not depend on b any more
    assert baseline_mark("er", comps, "re-llm", "a") == ""  # not tested


def test_holm_within_the_declared_family_and_bh_for_everything_else():
    systems = ["text-zs", "text", "speech", "re-llm"]
    comps = {
        "re-llm vs text-zs": {
            "er": {"p_permutation": 0.01},
            "ip": {"p_permutation": 0.02},
            "ex": {"p_permutation": 0.04},
            "ua": {"p_permutation": 0.03},
            "wa": {"p_permutation": 0.5},
        },
        "re-llm vs text": {"ua": {"p_permutation": 0.001}},
        "re-llm vs speech": {
            "er": {"p_permutation": 0.2},
            "ex": {"p_permutation": 0.3},
            "ua": {"p_permutation": 0.001},
        },
    }
    family = adjust(comps, systems)
    assert [(h["comparison"], h["metric"]) for h in family] == [
        ("re-llm vs text-zs", "er"),
        ("re-llm vs text-zs", "ex"),
        ("re-llm vs text-zs", "ua"),
        ("re-llm vs speech", "er"),
        ("re-llm vs speech", "ex"),
        ("re-llm vs speech", "ua"),
    ]
    confirmatory = [comps[c][m] for c, m in [(h["comparison"], h["metric"]) for h in family]]
    assert [r["p_holm"] for r in confirmatory] == stats.holm([0.01, 0.04, 0.03, 0.2, 0.3, 0.001])
    exploratory = [comps["re-llm vs text-zs"]["ip"], comps["re-llm vs text-zs"]["wa"], comps["re-llm vs text"]["ua"]]
    assert [r["p_bh"] for r in exploratory] == stats.benjamini_hochberg([0.02, 0.5, 0.001])
    assert all(r["confirmatory"] for r in confirmatory) and not any(r["confirmatory"] for r in exploratory)
    assert not any("p_holm" in r for r in exploratory) and not any("p_bh" in r for r in confirmatory)


def test_holm_and_bh_by_hand():
    assert stats.holm([0.01, 0.02, 0.03, 0.5]) == pytest.approx([0.04, 0.06, 0.06, 0.5])
    assert stats.benjamini_hochberg([0.01, 0.02, 0.03, 0.5]) == pytest.approx([0.04, 0.04, 0.04, 0.5])
    assert stats.holm([]) == [] and stats.benjamini_hochberg([]) == []


def test_tolerance_parsing():
    tol = tolerances({"tolerances": {"ua": 0.1}}, ["er=0.2", "wa=0"])
    assert tol["ua"] == 0.1 and tol["er"] == 0.2 and tol["wa"] == 0.0
    assert tol["ip"] == METRICS.get("ip").tolerance == 0.15  # the metric table's, where the baseline names none
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


def test_check_refuses_another_preset_data_or_scorer_and_fails_on_another_test_set(tmp_path, capsys):
    import json

    from relm.cli import main

    base = {
        "preset_hash": "aaa",
        "scorer": {"identity": "s"},
        "data": {"d": {"content_hash": "c1"}},
        "metrics": {"d": {"x": {"ua": 0.5, "n": 12}}},
    }
    run = json.loads(json.dumps(base)) | {"preset_hash": "bbb"}
    run["data"]["d"]["content_hash"] = "c2"
    (tmp_path / "b.json").write_text(json.dumps(base))
    (tmp_path / "r.json").write_text(json.dumps(run))
    args = ["check", str(tmp_path / "r.json"), "--baseline", str(tmp_path / "b.json")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "preset bbb vs the baseline's aaa" in err[0] and "d data c2 vs the baseline's c1" in err[0]
    run["metrics"]["d"]["x"] |= {"n": 15, "ua": 0.6}
    (tmp_path / "r.json").write_text(json.dumps(run))
    assert main([*args, "--allow-provenance-change"]) == 1  # gated anyway: the test set differs
    out = capsys.readouterr().out
    assert "answered 15 test utterances, the baseline 12" in out and "warning: preset bbb" in out
    run |= {"preset_hash": "aaa", "data": base["data"]}
    run["metrics"]["d"]["x"]["n"] = 12
    (tmp_path / "r.json").write_text(json.dumps(run))
    assert main(args) == 0
