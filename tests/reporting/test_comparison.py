"""Differences between variants: paired over shared folds, unpaired otherwise, Holm."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tuner.data import DatasetSpec
from tuner.reporting._comparison import VariantScores, compare_variants
from tuner.stats import corrected_paired_p, corrected_unpaired_p, holdout_ratio, holm
from tuner.study import StudyConfig, load_definitions

A = [0.91, 0.92, 0.90]
B = [0.88, 0.90, 0.87]
C = [0.905, 0.921, 0.899]


@pytest.fixture
def config(studies_dir: Path) -> StudyConfig:
    definition = load_definitions(studies_dir)["tiny"]
    return StudyConfig("a", definition, DatasetSpec("fashion-mnist"), "f" * 32, epochs=2)


def test_variants_on_shared_folds_are_paired_and_the_rest_unpaired(config: StudyConfig) -> None:
    same = replace(config, study_name="b")
    other_folds = replace(config, study_name="c", fold_seed=7)
    pairs = compare_variants(
        [
            VariantScores("a", config, A),
            VariantScores("b", same, B),
            VariantScores("c", other_folds, C),
        ]
    )
    ratio = holdout_ratio(3)
    raw = [
        corrected_paired_p(A, B, ratio),  # a vs b: same data, folds and seed
        corrected_unpaired_p(A, C, ratio),  # a vs c: another fold seed
        corrected_unpaired_p(C, B, ratio),  # c (higher mean) vs b
    ]
    assert [(p.first, p.second, p.paired) for p in pairs] == [
        ("a", "b", True),
        ("a", "c", False),
        ("c", "b", False),
    ]
    assert [p.p_value for p in pairs] == pytest.approx(holm(raw))
    assert pairs[0].difference == pytest.approx(sum(A) / 3 - sum(B) / 3)
    assert "paired over shared folds" in pairs[0].sentence()
    assert "unpaired: different folds" in pairs[1].sentence()
    assert all(p.significant == (p.p_value < 0.05) for p in pairs)
