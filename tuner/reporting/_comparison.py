"""Which variants' winners differ significantly: the report's pairwise table.

Two variants' winners are compared on their per-fold CV accuracies. Studies launched on
the same data (dataset and content fingerprint) with the same fold seed, fold count and
CV repeats share their folds, so the comparison is paired (the corrected paired t-test); otherwise
it is unpaired (Welch's test, each side's variance corrected) and says so. All pairs are
Holm-corrected together (:mod:`tuner.stats`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from tuner.stats import (
    DEFAULT_ALPHA,
    corrected_paired_p,
    corrected_unpaired_p,
    holdout_ratio,
    holm,
)
from tuner.study import StudyConfig, schema


@dataclass(frozen=True)
class VariantScores:
    """A variant's winner as the comparison needs it."""

    name: str
    config: StudyConfig
    fold_accuracies: list[float]

    @property
    def mean(self) -> float:
        return sum(self.fold_accuracies) / len(self.fold_accuracies)


@dataclass(frozen=True)
class VariantComparison:
    """One pair of variants' winners: ``first`` minus ``second``, tested.

    Attributes:
        first: The variant with the higher mean CV accuracy.
        second: The other.
        difference: The difference of their mean CV accuracies.
        paired: Compared fold by fold (shared folds) rather than unpaired.
        p_value: Holm-adjusted two-sided p-value (NaN: too few folds to test).
        significant: ``p_value`` below the alpha the comparison was made at.
    """

    first: str
    second: str
    difference: float
    paired: bool
    p_value: float
    significant: bool

    def sentence(self) -> str:
        """The result in words, derived from the numbers."""
        how = "paired over shared folds" if self.paired else "unpaired: different folds"
        if math.isnan(self.p_value):
            return f"{self.first} vs {self.second}: {self.difference:+.4f}, not testable ({how})"
        verdict = "significant" if self.significant else "not significant"
        return (
            f"{self.first} vs {self.second}: {self.difference:+.4f} CV accuracy, "
            f"p = {self.p_value:.3g} (Holm; {how}): {verdict}"
        )

    def to_record(self) -> dict[str, object]:
        return {
            "first": self.first,
            "second": self.second,
            "difference": self.difference,
            "paired": self.paired,
            "p_value_holm": self.p_value,
            "significant": self.significant,
        }


def shares_folds(a: StudyConfig, b: StudyConfig) -> bool:
    """Whether two studies' trials were scored on the very same folds."""
    return (
        a.dataset == b.dataset
        and a.data_fingerprint == b.data_fingerprint
        and a.fold_seed == b.fold_seed
        and a.definition.protocol.folds == b.definition.protocol.folds
        and a.repeats == b.repeats
    )


def compare_variants(
    variants: list[VariantScores], alpha: float = DEFAULT_ALPHA
) -> list[VariantComparison]:
    """Every pair of variants' winners, tested and Holm-corrected together."""
    pairs = []
    for one, other in combinations(variants, 2):
        first, second = (one, other) if one.mean >= other.mean else (other, one)
        paired = shares_folds(first.config, second.config)
        # n_test/n_train of one fold of k: repetitions add scores (J = R*k), not a ratio.
        ratio = holdout_ratio(first.config.definition.protocol.folds)
        n = len(first.fold_accuracies)
        if paired and len(second.fold_accuracies) == n > 1:
            p = corrected_paired_p(first.fold_accuracies, second.fold_accuracies, ratio)
        elif not paired and min(len(first.fold_accuracies), len(second.fold_accuracies)) > 1:
            p = corrected_unpaired_p(first.fold_accuracies, second.fold_accuracies, ratio)
        else:
            p = math.nan
        pairs.append((first, second, paired, p))
    adjusted = holm([p for *_, p in pairs])
    return [
        VariantComparison(
            first=first.name,
            second=second.name,
            difference=first.mean - second.mean,
            paired=paired,
            p_value=p,
            significant=not math.isnan(p) and p < alpha,
        )
        for (first, second, paired, _), p in zip(pairs, adjusted, strict=True)
    ]


def winner_scores(name: str, config: StudyConfig, user_attrs: dict[str, Any]) -> VariantScores:
    """A winner's per-fold accuracies as its trial recorded them."""
    scores = user_attrs.get(schema.FOLD_ACCURACIES) or []
    return VariantScores(name, config, [float(s) for s in scores])
