import numpy as np
import pytest

from tuner.data import stratified_folds


def test_folds_partition_the_data_and_are_stratified() -> None:
    labels = np.random.default_rng(0).integers(0, 10, 999)
    folds = stratified_folds(labels, 3, seed=42)
    validation = np.concatenate([val for _, val in folds])
    assert sorted(validation.tolist()) == list(range(999))
    for train, val in folds:
        assert not set(train.tolist()) & set(val.tolist())
        assert len(train) + len(val) == 999
        assert abs(len(val) - 333) <= 1
        counts = np.bincount(labels[val], minlength=10)
        expected = np.bincount(labels, minlength=10) / 3
        assert np.all(np.abs(counts - expected) <= 1)


def test_folds_are_deterministic_per_seed() -> None:
    labels = np.arange(90) % 10
    first = stratified_folds(labels, 3, seed=7)
    again = stratified_folds(labels, 3, seed=7)
    other = stratified_folds(labels, 3, seed=8)
    for (a, b), (c, d) in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(first, other, strict=True))


def test_too_few_samples_or_folds() -> None:
    with pytest.raises(ValueError):
        stratified_folds(np.arange(2), 3, seed=0)
    with pytest.raises(ValueError):
        stratified_folds(np.arange(20), 1, seed=0)


def test_data_too_small_for_the_folds_is_refused() -> None:
    import pytest

    from tuner.data import check_foldable
    from tuner.errors import TunerError

    check_foldable(np.repeat(np.arange(10), 3), 3, "enough")
    with pytest.raises(TunerError, match=r"5 training rows cannot make 3 folds.*at least 30"):
        check_foldable(np.arange(5), 3, "tiny")
    scarce = np.r_[np.repeat(np.arange(9), 5), [9, 9]]
    with pytest.raises(TunerError, match=r"class 9: 2"):
        check_foldable(scarce, 3, "scarce")
    absent = np.repeat(np.arange(9), 5)
    with pytest.raises(TunerError, match=r"class 9: none"):
        check_foldable(absent, 3, "absent")


def test_repeated_folds_start_with_the_unrepeated_split_and_each_repeat_partitions() -> None:
    from tuner.data import repeat_seed, repeated_folds

    labels = np.random.default_rng(3).integers(0, 10, 300)
    seeds = [repeat_seed(42, r) for r in range(3)]
    assert seeds[0] == 42 and len(set(seeds)) == 3
    assert seeds == [repeat_seed(42, r) for r in range(3)]  # reproducible
    folds = repeated_folds(labels, 3, seeds)
    assert len(folds) == 9
    # Repetition 0 is exactly today's split: R=1 keeps the protocol bit for bit.
    for (a, b), (c, d) in zip(folds[:3], stratified_folds(labels, 3, seed=42), strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    for r in range(3):
        validation = np.concatenate([val for _, val in folds[3 * r : 3 * r + 3]])
        assert sorted(validation.tolist()) == list(range(300))
    # Each repetition splits differently.
    for r in (1, 2):
        assert not all(np.array_equal(folds[j][1], folds[3 * r + j][1]) for j in range(3))
