"""Statistics of cross-validation scores: corrected intervals, paired tests, Holm.

Every grid point of a study is scored on the same folds, so its points can be compared
pairwise; the variance of k-fold scores is corrected for the overlap of their training
sets (Nadeau & Bengio, 2003). See :mod:`tuner.stats._corrected` and docs/statistics.md.
"""

from tuner.stats._corrected import (
    DEFAULT_ALPHA,
    Interval,
    corrected_interval,
    corrected_paired_p,
    corrected_unpaired_p,
    corrected_variance_factor,
    holdout_ratio,
    holm,
)

__all__ = [
    "DEFAULT_ALPHA",
    "Interval",
    "corrected_interval",
    "corrected_paired_p",
    "corrected_unpaired_p",
    "corrected_variance_factor",
    "holdout_ratio",
    "holm",
]
