"""What a study's differences are worth: intervals, paired tests, ties with the best.

k-fold cross-validation scores are not independent samples: every two training sets
share (k-2)/(k-1) of their images, so the plain standard error understates the spread
and a plain t-test finds "significant" differences that are not. The corrected
resampled t statistic (Nadeau & Bengio, 2003, "Inference for the Generalization Error",
Machine Learning 52) adds the test/train size ratio to the variance term:

    t = mean(d) / sqrt((1/J + n_test/n_train) * s2(d)),  J - 1 degrees of freedom,

where ``d`` are the J per-fold scores (an interval) or per-fold differences between two
points trained on the same folds (a paired test), and ``s2`` their sample variance. For
k-fold CV, n_test/n_train = 1/(k-1); repeated CV (R repetitions of k folds) has
J = R*k (Bouckaert & Frank, 2004). Comparing the best point with every other is many
tests at once: Holm's step-down correction (Holm, 1979) keeps the chance of calling any
true tie a difference at ``alpha``. A point whose corrected difference from the best is
not significant is *tied with the best*.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def _student_t() -> Any:
    # SciPy's stats take half a second to import: loaded when a test runs, so commands
    # that never test (tuner --help, tuner worker) do not pay for it.
    from scipy import stats

    return stats.t


DEFAULT_ALPHA = 0.05
"""Significance level of the ties and of the comparisons across variants."""


def holdout_ratio(folds: int) -> float:
    """n_test / n_train of k-fold cross-validation: one fold tested, k-1 trained on."""
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {folds}")
    return 1.0 / (folds - 1)


def corrected_variance_factor(scores: int, ratio: float) -> float:
    """``1/J + n_test/n_train``: what multiplies the scores' sample variance."""
    return 1.0 / scores + ratio


@dataclass(frozen=True)
class Interval:
    """A mean with its corrected confidence interval."""

    mean: float
    low: float
    high: float
    confidence: float
    clipped: bool = False
    """True when the t interval ran past the score's range and was cut to it."""

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def within(self, low: float, high: float) -> Interval:
        """This interval cut to the score's range ``[low, high]`` (accuracy: [0, 1]; R²:
        at most 1), marked :attr:`clipped` when that changed it."""
        if math.isnan(self.low) or math.isnan(self.high):
            return self
        cut_low, cut_high = max(self.low, low), min(self.high, high)
        if (cut_low, cut_high) == (self.low, self.high):
            return self
        return Interval(self.mean, cut_low, cut_high, self.confidence, clipped=True)

    def __str__(self) -> str:
        return f"{self.mean:.4f} [{self.low:.4f}, {self.high:.4f}]"


def corrected_interval(
    scores: Sequence[float], ratio: float, confidence: float = 1 - DEFAULT_ALPHA
) -> Interval:
    """The Nadeau-Bengio corrected t interval of the mean of ``scores``.

    Args:
        scores: One score per fold (of every repetition).
        ratio: n_test / n_train of one fold (:func:`holdout_ratio`).
        confidence: Coverage of the interval.
    """
    values = np.asarray(scores, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return Interval(mean, math.nan, math.nan, confidence)
    spread = math.sqrt(corrected_variance_factor(len(values), ratio) * values.var(ddof=1))
    quantile = float(_student_t().ppf(0.5 + confidence / 2, len(values) - 1))
    return Interval(mean, mean - quantile * spread, mean + quantile * spread, confidence)


def corrected_paired_p(a: Sequence[float], b: Sequence[float], ratio: float) -> float:
    """Two-sided p-value of the corrected resampled paired t-test of ``a`` against ``b``.

    ``a`` and ``b`` are the scores of two points on the same folds, in the same order.
    """
    differences = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(differences) < 2:
        return math.nan
    mean, variance = float(differences.mean()), float(differences.var(ddof=1))
    if variance == 0.0:
        return 1.0 if mean == 0.0 else 0.0
    t = mean / math.sqrt(corrected_variance_factor(len(differences), ratio) * variance)
    return float(2 * _student_t().sf(abs(t), len(differences) - 1))


def corrected_unpaired_p(a: Sequence[float], b: Sequence[float], ratio: float) -> float:
    """Two-sided p-value comparing two points trained on *different* folds: Welch's test
    with each side's variance corrected like :func:`corrected_interval`."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) < 2 or len(y) < 2:
        return math.nan
    vx = corrected_variance_factor(len(x), ratio) * x.var(ddof=1)
    vy = corrected_variance_factor(len(y), ratio) * y.var(ddof=1)
    if vx + vy == 0.0:
        return 1.0 if x.mean() == y.mean() else 0.0
    t = (x.mean() - y.mean()) / math.sqrt(vx + vy)
    freedom = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    return float(2 * _student_t().sf(abs(t), freedom))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given (NaN stays NaN)."""
    known = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(known):
        running = max(running, min(1.0, (len(known) - rank) * p))
        adjusted[index] = running
    return adjusted
