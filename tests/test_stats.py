"""Paired statistics against scipy and hand computations on fixed data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from relm.scoring import stats


@pytest.fixture
def levels():
    rng = np.random.default_rng(1)
    base = rng.integers(0, 3, 200)
    better = np.clip(base + (rng.random(200) < 0.35), 0, 2)
    return better, base


def test_relative_improvement_matches_the_papers_arithmetic():
    assert stats.relative_improvement(1.851, 1.613) == pytest.approx(14.755, abs=1e-3)
    assert np.isnan(stats.relative_improvement(1.0, 0.0))


def test_wilcoxon_is_scipys_default_and_zsplit_on_request(levels):
    a, b = levels
    assert (a == b).sum() > 50  # many ties: the two zero methods differ here
    assert stats.wilcoxon(a, b) == pytest.approx(sps.wilcoxon(a, b).pvalue, rel=1e-12)
    assert stats.wilcoxon(a, b, "zsplit") == pytest.approx(sps.wilcoxon(a, b, zero_method="zsplit").pvalue, rel=1e-12)
    assert stats.wilcoxon(a, b) != pytest.approx(stats.wilcoxon(a, b, "zsplit"), rel=1e-3)
    assert stats.wilcoxon(a, a) == 1.0


def test_permutation_identical_systems_p_near_one(levels):
    a, _ = levels
    assert stats.permutation_test(a, a) == 1.0
    rng = np.random.default_rng(2)
    noise_a, noise_b = rng.integers(0, 3, 300), rng.integers(0, 3, 300)
    assert stats.permutation_test(noise_a, noise_b) > 0.05


def test_permutation_clearly_different_p_small(levels):
    a, b = levels
    p = stats.permutation_test(a, b, n_resamples=5000)
    assert p < 0.01
    # agrees with scipy's exact-in-distribution paired permutation test
    ref = sps.permutation_test((a - b,), np.mean, permutation_type="samples", n_resamples=5000, random_state=0).pvalue
    assert p == pytest.approx(ref, abs=0.005)


def test_permutation_is_seeded(levels):
    a, b = levels[0][:30], levels[1][:30]
    p = stats.permutation_test(a, b, seed=3)
    assert 0.001 < p < 0.5 and p == stats.permutation_test(a, b, seed=3)
    # the seed is used: other seeds draw other sign flips, so the resampled p moves a little
    assert len({stats.permutation_test(a, b, seed=s) for s in range(4)}) > 1


def test_bootstrap_ci_covers_the_difference(levels):
    a, b = levels
    lo, hi = stats.bootstrap_ci(a, b)
    assert lo < (a - b).mean() < hi and lo > 0


def test_mcnemar_exact_by_hand():
    # 8 discordant pairs, 7 favour b: p = 2 * P(X <= 1 | n=8, 1/2) = 2 * 9/256
    ca = np.array([1] * 10 + [1] + [0] * 7 + [0] * 5, dtype=bool)
    cb = np.array([1] * 10 + [0] + [1] * 7 + [0] * 5, dtype=bool)
    assert stats.mcnemar(ca, cb) == pytest.approx(2 * 9 / 256)
    assert stats.mcnemar(ca, ca) == 1.0


def test_ua_difference_test():
    rng = np.random.default_rng(0)
    gold = rng.choice(["a", "b", "c"], 300, p=[0.6, 0.3, 0.1])
    good = np.where(rng.random(300) < 0.8, gold, "a")
    chance = rng.choice(["a", "b", "c"], 300)
    res = stats.ua_difference_test(gold, good == gold, chance == gold, n_resamples=2000)
    assert res["p_permutation"] < 0.01 and res["ci95"][0] > 0
    same = stats.ua_difference_test(gold, good == gold, good == gold, n_resamples=500)
    assert same["difference"] == 0 and same["p_permutation"] == 1.0


def test_holm_and_bh_by_hand():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 -> 0.02, 0.03, 0.06, 0.06 (monotone)
    assert stats.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: 0.005*4/1, 0.01*4/2, 0.03*4/3, 0.04*4/4 -> 0.02, 0.02, 0.04, 0.04
    assert stats.benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert stats.holm([]) == [] and stats.benjamini_hochberg([]) == []


def test_compare_bundles_everything(levels):
    a, b = levels
    out = stats.compare(a, b, n_resamples=1000)
    assert set(out) == {
        "mean_a",
        "mean_b",
        "relative_improvement",
        "p_wilcoxon",
        "p_wilcoxon_zsplit",
        "p_permutation",
        "ci95",
    }
    assert out["relative_improvement"] > 0
