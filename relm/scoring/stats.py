"""Paired comparisons of two systems answering the same test utterances.

All resampling is seeded and vectorised: one (n_resamples x n_items) matrix per test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

from relm.errors import RelmError
from relm.scoring.ser import ua_matrix


def _paired(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise RelmError(f"paired test needs two equal-length 1-d arrays, got {a.shape} and {b.shape}")
    return a, b


def relative_improvement(new: float, base: float) -> float:
    """(new - base) / base in percent, as the RE-LLM paper reports; NaN when base is 0."""
    return float("nan") if base == 0 else 100.0 * (new - base) / abs(base)


def wilcoxon(a, b, zero_method: str = "wilcox") -> float:
    """Two-sided Wilcoxon signed-rank p. `wilcox` (scipy's default, as the paper would have run it) drops zero
    differences; `zsplit` keeps them, split between the signs (common with 0/1/2 levels)."""
    a, b = _paired(a, b)
    if len(a) == 0 or np.all(a == b):
        return 1.0
    return float(stats.wilcoxon(a, b, zero_method=zero_method, alternative="two-sided").pvalue)


def permutation_test(a, b, n_resamples: int = 10000, seed: int = 0) -> float:
    """Two-sided paired permutation (sign-flip) test of the mean difference."""
    a, b = _paired(a, b)
    d = a - b
    if len(d) == 0 or np.all(d == 0):
        return 1.0
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(n_resamples, len(d)))
    null = np.abs((signs * d).mean(axis=1))
    observed = abs(d.mean())
    return float((np.sum(null >= observed - 1e-12) + 1) / (n_resamples + 1))


def bootstrap_ci(
    a,
    b,
    n_resamples: int = 10000,
    seed: int = 0,
    level: float = 0.95,
    statistic: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[float, float]:
    """Percentile CI of mean(a - b) from resampling items with replacement (paired)."""
    a, b = _paired(a, b)
    if len(a) == 0:
        return (float("nan"), float("nan"))
    d = a - b
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(n_resamples, len(d)))
    boots = d[idx].mean(axis=1) if statistic is None else statistic(d[idx])
    lo, hi = np.quantile(boots, [(1 - level) / 2, 1 - (1 - level) / 2])
    return (float(lo), float(hi))


def mcnemar(correct_a, correct_b) -> float:
    """Exact McNemar p (binomial on the discordant pairs) for two paired accuracies."""
    ca, cb = (np.asarray(x, dtype=bool) for x in (correct_a, correct_b))
    if ca.shape != cb.shape:
        raise RelmError(f"McNemar needs equal-length arrays, got {ca.shape} and {cb.shape}")
    n01, n10 = int(np.sum(~ca & cb)), int(np.sum(ca & ~cb))
    if n01 + n10 == 0:
        return 1.0
    return float(stats.binomtest(n01, n01 + n10, 0.5).pvalue)


def ua_difference_test(
    gold: Sequence | np.ndarray,
    correct_a: Sequence | np.ndarray,
    correct_b: Sequence | np.ndarray,
    n_resamples: int = 10000,
    seed: int = 0,
) -> dict:
    """UA(a) - UA(b) over utterances: paired permutation p (swap a/b per utterance) and bootstrap 95% CI.

    `correct_a` / `correct_b` hold one number per utterance: the share of a system's seeds that
    answered it correctly (0/1 with one seed). The utterance is the unit of replication, so a
    resample moves all of an utterance's seeds together. UA is a mean of per-class recalls, not
    a per-utterance mean, so it is recomputed on every resample.
    """
    g = np.asarray(gold, dtype=object).astype(str)
    ca, cb = np.asarray(correct_a, dtype=float), np.asarray(correct_b, dtype=float)
    if not (len(g) == len(ca) == len(cb)):
        raise RelmError("UA test: gold and both correctness vectors must have the same length")
    observed = float(ua_matrix(g, ca[None])[0] - ua_matrix(g, cb[None])[0])
    rng = np.random.default_rng(seed)
    swap = rng.random((n_resamples, len(g))) < 0.5
    perm_a, perm_b = np.where(swap, cb, ca), np.where(swap, ca, cb)
    null = ua_matrix(g, perm_a) - ua_matrix(g, perm_b)
    p = float((np.sum(np.abs(null) >= abs(observed) - 1e-12) + 1) / (n_resamples + 1))
    idx = rng.integers(0, len(g), size=(n_resamples, len(g)))
    boots = ua_matrix(g[idx], ca[idx]) - ua_matrix(g[idx], cb[idx])
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return {"difference": observed, "p_permutation": p, "ci95": [float(lo), float(hi)]}


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    order = np.argsort(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (scipy's `false_discovery_control`)."""
    if len(pvalues) == 0:
        return []
    return stats.false_discovery_control(np.asarray(pvalues, dtype=float), method="bh").tolist()


def compare(a, b, n_resamples: int = 10000, seed: int = 0) -> dict:
    """Every paired statistic of item scores a vs b (e.g. EPITOME levels of two systems)."""
    a, b = _paired(a, b)
    return {
        "mean_a": float(a.mean()) if len(a) else float("nan"),
        "mean_b": float(b.mean()) if len(b) else float("nan"),
        "relative_improvement": relative_improvement(float(a.mean()), float(b.mean())) if len(a) else float("nan"),
        "p_wilcoxon": wilcoxon(a, b),
        "p_wilcoxon_zsplit": wilcoxon(a, b, "zsplit"),
        "p_permutation": permutation_test(a, b, n_resamples, seed),
        "ci95": list(bootstrap_ci(a, b, n_resamples, seed)),
    }
