"""The corrected statistics, checked against SciPy and against the formulas written out."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from tuner.reporting import RankedPoint
from tuner.reporting._ranking import ties_sentence, with_ties
from tuner.stats import (
    corrected_interval,
    corrected_paired_p,
    corrected_unpaired_p,
    holdout_ratio,
    holm,
)

A = [0.8812, 0.8790, 0.8801]
B = [0.8780, 0.8771, 0.8799]
SCORES = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=2, max_size=10)


def test_without_the_correction_the_interval_is_scipys_t_interval() -> None:
    low, high = stats.t.interval(0.95, len(A) - 1, loc=np.mean(A), scale=stats.sem(A))
    interval = corrected_interval(A, ratio=0.0)
    assert (interval.low, interval.high) == pytest.approx((low, high))


def test_the_corrected_interval_is_the_nadeau_bengio_formula_written_out() -> None:
    k = len(A)
    mean = sum(A) / k
    variance = sum((a - mean) ** 2 for a in A) / (k - 1)
    half = stats.t.ppf(0.975, k - 1) * math.sqrt((1 / k + 1 / (k - 1)) * variance)
    interval = corrected_interval(A, holdout_ratio(k))
    assert (interval.low, interval.mean, interval.high) == pytest.approx(
        (mean - half, mean, mean + half)
    )
    assert interval.half_width > corrected_interval(A, 0.0).half_width  # wider, as it must


def test_without_the_correction_the_paired_test_is_scipys() -> None:
    assert corrected_paired_p(A, B, ratio=0.0) == pytest.approx(stats.ttest_rel(A, B).pvalue)
    assert corrected_unpaired_p(A, B, ratio=0.0) == pytest.approx(
        stats.ttest_ind(A, B, equal_var=False).pvalue
    )


def test_the_corrected_paired_test_is_the_formula_written_out() -> None:
    d = [a - b for a, b in zip(A, B, strict=True)]
    k = len(d)
    mean = sum(d) / k
    variance = sum((x - mean) ** 2 for x in d) / (k - 1)
    t = mean / math.sqrt((1 / k + 1 / (k - 1)) * variance)
    expected = 2 * (1 - stats.t.cdf(abs(t), k - 1))
    assert corrected_paired_p(A, B, holdout_ratio(k)) == pytest.approx(expected)
    # The correction can only make a difference less significant.
    assert corrected_paired_p(A, B, holdout_ratio(k)) > corrected_paired_p(A, B, 0.0)


def test_holm_steps_down_as_written_out() -> None:
    # Sorted 0.01, 0.03, 0.04: x3 = 0.03, x2 = 0.06, x1 = 0.04 -> kept monotone at 0.06.
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    adjusted = holm([0.2, math.nan, 0.01])
    assert adjusted[0] == pytest.approx(0.2) and math.isnan(adjusted[1])
    assert adjusted[2] == pytest.approx(0.02)


@settings(max_examples=60, deadline=None)
@given(SCORES, st.floats(0.0, 2.0))
def test_intervals_hold_their_mean_and_widen_with_the_correction(
    scores: list[float], ratio: float
) -> None:
    interval = corrected_interval(scores, ratio)
    assert interval.low <= interval.mean <= interval.high
    assert corrected_interval(scores, 0.0).half_width <= interval.half_width + 1e-12


def point(rank: int, units: tuple[int, ...], scores: list[float]) -> RankedPoint:
    return RankedPoint(rank, rank, units, float(np.mean(scores)), float(np.std(scores)), 1.0)


def test_ties_with_the_best_are_the_points_a_holm_corrected_paired_test_cannot_separate() -> None:
    best = [0.90, 0.91, 0.89]
    close = [0.899, 0.912, 0.887]  # differences flip sign: not significant
    far = [0.70, 0.72, 0.69]  # about 0.2 worse on every fold: significant
    ranked = with_ties(
        [point(1, (512, 128), best), point(2, (512, 64), close), point(3, (256, 32), far)],
        [best, close, far],
    )
    assert [p.tied_with_best for p in ranked] == [True, True, False]
    raw = [corrected_paired_p(best, other, holdout_ratio(3)) for other in (close, far)]
    assert [p.p_vs_best for p in ranked[1:]] == pytest.approx(holm(raw))
    sentence = ties_sentence("2layer", ranked, 0.05)
    assert sentence.startswith("2layer: best 512-128 (CV accuracy 0.9000 [")
    assert sentence.endswith(
        "tied with it (difference not significant at alpha 0.05, "
        "corrected paired t-test, Holm): 512-64"
    )


# Repeated k-fold CV (Bouckaert & Frank, 2004): R x k scores, variance factor
# 1/(R*k) + n_test/n_train with n_test/n_train = 1/(k-1) of one fold, R*k - 1 dof.
R, K = 2, 3
A6 = [0.8812, 0.8790, 0.8801, 0.8779, 0.8825, 0.8794]
B6 = [0.8780, 0.8771, 0.8799, 0.8760, 0.8801, 0.8785]


def test_the_repeated_cv_interval_is_the_bouckaert_frank_formula_written_out() -> None:
    j = R * K
    mean = sum(A6) / j
    variance = sum((a - mean) ** 2 for a in A6) / (j - 1)
    half = stats.t.ppf(0.975, j - 1) * math.sqrt((1 / j + 1 / (K - 1)) * variance)
    interval = corrected_interval(A6, holdout_ratio(K))
    assert (interval.low, interval.high) == pytest.approx((mean - half, mean + half))
    # SciPy's t interval with the corrected scale.
    scale = math.sqrt((1 / j + 1 / (K - 1)) * stats.tvar(A6))
    assert (interval.low, interval.high) == pytest.approx(
        stats.t.interval(0.95, j - 1, loc=np.mean(A6), scale=scale)
    )
    # The ratio is one fold's, not that of R*k folds: 1/(k-1) = 0.5, not 1/5.
    assert interval.half_width > corrected_interval(A6, holdout_ratio(j)).half_width


def test_the_repeated_cv_paired_test_is_the_formula_written_out() -> None:
    d = [a - b for a, b in zip(A6, B6, strict=True)]
    j = len(d)
    mean = sum(d) / j
    variance = sum((x - mean) ** 2 for x in d) / (j - 1)
    t = mean / math.sqrt((1 / j + 1 / (K - 1)) * variance)
    expected = 2 * stats.t.sf(abs(t), j - 1)
    assert corrected_paired_p(A6, B6, holdout_ratio(K)) == pytest.approx(expected)
    # SciPy's paired t on the differences, its statistic rescaled by the correction.
    plain = stats.ttest_rel(A6, B6).statistic
    rescaled = plain * math.sqrt((1 / j) / (1 / j + 1 / (K - 1)))
    assert corrected_paired_p(A6, B6, holdout_ratio(K)) == pytest.approx(
        2 * stats.t.sf(abs(rescaled), j - 1)
    )


def test_ties_over_repeated_cv_use_the_folds_of_one_split() -> None:
    far = [a - 0.05 for a in A6]
    ranked = with_ties(
        [point(1, (512, 128), A6), point(2, (512, 64), B6), point(3, (256, 32), far)],
        [A6, B6, far],
        folds=K,
    )
    raw = [corrected_paired_p(A6, other, holdout_ratio(K)) for other in (B6, far)]
    assert [p.p_vs_best for p in ranked[1:]] == pytest.approx(holm(raw))
    assert [p.tied_with_best for p in ranked] == [True, *(p >= 0.05 for p in holm(raw))]
    interval = ranked[0].interval
    assert interval is not None
    expected = corrected_interval(A6, holdout_ratio(K))
    assert (interval.low, interval.high) == pytest.approx((expected.low, expected.high))
    # Without `folds`, six scores would be read as one 6-fold split (a narrower interval).
    unrepeated = with_ties([point(1, (512, 128), A6)], [A6])[0].interval
    assert unrepeated is not None and unrepeated.half_width < interval.half_width


def test_an_interval_past_the_scores_range_is_cut_to_it_and_says_so() -> None:
    near_one = [0.99, 0.93, 1.0]  # a wide t interval around 0.97 runs past 1
    ranked = with_ties([point(1, (8, 8), near_one)], [near_one])
    interval = ranked[0].interval
    assert interval is not None and interval.clipped and interval.high == 1.0
    assert interval.low == pytest.approx(corrected_interval(near_one, holdout_ratio(3)).low)
    assert "clipped to the score's range" in ties_sentence("s", ranked, 0.05)
    # R² has no lower bound: only the top is cut.
    r2 = [0.2, -0.6, 0.9]
    open_below = with_ties([point(1, (8, 8), r2)], [r2], bounds=(-math.inf, 1.0))[0].interval
    assert open_below is not None and open_below.low < -0.6 and open_below.high == 1.0
    inside = with_ties([point(1, (8, 8), [0.5, 0.51, 0.49])], [[0.5, 0.51, 0.49]])[0].interval
    assert inside is not None and not inside.clipped


def _with_folds(rank: int, units: tuple[int, ...], scores: list[float]) -> RankedPoint:
    from dataclasses import replace

    from tuner.study import FoldResult

    folds = tuple(FoldResult(f, s, 0.3, 1.0, {}) for f, s in enumerate(scores))
    return replace(point(rank, units, scores), folds=folds)


def test_a_grid_tied_with_its_best_gets_advice_computed_from_its_folds() -> None:
    from tuner.reporting._ranking import tie_advice

    best = [0.80, 0.84, 0.82]
    second = [0.79, 0.835, 0.805]  # behind on every fold by 0.005 to 0.015
    third = [0.78, 0.85, 0.80]
    scores = [best, second, third]
    ranked = with_ties([_with_folds(i + 1, (8, i), s) for i, s in enumerate(scores)], scores)
    assert all(p.tied_with_best for p in ranked)
    advice = tie_advice(ranked, 0.05, 3)
    assert advice is not None
    assert "leads the second by 0.0100 against a fold-to-fold spread of 0.0050" in advice
    # The smallest R whose corrected paired test reaches alpha, recomputed here.
    mean, var = 0.01, 0.005**2
    needed = next(
        r
        for r in range(2, 101)
        if 2 * stats.t.sf(mean / math.sqrt((1 / (3 * r) + 0.5) * var), 3 * r - 1) < 0.05
    )
    assert f"at least --repeats {needed} would separate them" in advice
    assert advice in ties_sentence("s", ranked, 0.05, folds=3)
    # A lead small next to its spread is beyond any number of repeats.
    noisy = [[0.80, 0.90, 0.70], [0.85, 0.80, 0.74], [0.70, 0.80, 0.75]]
    tied = with_ties([_with_folds(i + 1, (8, i), s) for i, s in enumerate(noisy)], noisy)
    said = tie_advice(tied, 0.05, 3)
    assert said is not None and "no number of --repeats separates them" in said
    # When most points are told apart, no advice.
    far = [best, [0.5, 0.52, 0.51], [0.4, 0.42, 0.41]]
    apart = with_ties([_with_folds(i + 1, (8, i), s) for i, s in enumerate(far)], far)
    assert tie_advice(apart, 0.05, 3) is None
