"""Users' own data: tables and arrays of any shape, any classes, regression, and bad data.

Real tables that ship inside scikit-learn (wine, diabetes) stand in for a user's files,
written as CSV and Parquet; every bad-data case is refused in one line naming the column
and the fix, before any model is built.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_diabetes, load_wine

from tuner.data import (
    MAX_CATEGORIES,
    MAX_CLASSES,
    MAX_FEATURES,
    MAX_TABLE_BYTES,
    NUMERIC,
    ONE_HOT,
    PIXELS,
    DatasetSpec,
    Task,
    check_foldable,
    final_arrays,
    fold_arrays,
    load_dataset,
    repeated_folds,
    shuffled_folds,
)
from tuner.errors import TunerError


def load(path: Path, **choices: object) -> object:
    return load_dataset(DatasetSpec.parse(str(path), **choices))  # type: ignore[arg-type]


@pytest.fixture
def diabetes_parquet(tmp_path: Path) -> Path:
    path = tmp_path / "diabetes.parquet"
    load_diabetes(as_frame=True).frame.to_parquet(path)
    return path


def test_csv_classes_are_named_mapped_and_stratified(wine_csv: Path) -> None:
    dataset = load(wine_csv, target="target")
    task = dataset.task
    assert task.kind == "classification" and task.classes == ("barbera", "barolo", "grignolino")
    assert task.inputs == 13 and all(f.rule == NUMERIC for f in task.features)
    assert dataset.x_train.dtype == np.float32 and dataset.y_train.dtype == np.int32
    # 20% held out, stratified: each class keeps its share within one row.
    assert len(dataset.y_test) == round(178 * 0.2)
    full = np.bincount(dataset.y_train, minlength=3) + np.bincount(dataset.y_test, minlength=3)
    share = np.bincount(dataset.y_test, minlength=3) / full
    assert np.all(np.abs(share - 0.2) < 0.05)
    # The same spec gives the same rows: workers can prove it by the fingerprint.
    assert load(wine_csv, target="target").fingerprint() == dataset.fingerprint()
    assert load(wine_csv, target="target", test_fraction=0.3).fingerprint() != (
        dataset.fingerprint()
    )


def test_parquet_regression_is_inferred_from_a_float_target(diabetes_parquet: Path) -> None:
    dataset = load(diabetes_parquet, target="target")
    assert dataset.task.regression and dataset.task.outputs == 1
    assert dataset.task.metric_label == "R²" and dataset.y_train.dtype == np.float32
    # The diabetes target holds whole numbers (25.0 ... 346.0) but many of them: a quantity.
    assert np.all(dataset.y_train == np.round(dataset.y_train))
    with pytest.raises(TunerError, match=r"target 'sex' holds fractional numbers"):
        load(diabetes_parquet, target="sex", task="classification")


def test_the_task_can_be_set(wine_csv: Path) -> None:
    # magnesium holds many whole numbers (a quantity); --task classification takes them
    # as labels, and the text target as values is refused.
    assert load(wine_csv, target="magnesium").task.regression
    as_classes = load(wine_csv, target="magnesium", task="classification").task
    assert as_classes.kind == "classification" and "127" in as_classes.classes
    with pytest.raises(TunerError, match=r"holds text \(e.g. 'barolo'\); a regression needs"):
        load(wine_csv, target="target", task="regression")


def test_text_columns_are_one_hot_by_the_training_rows(tmp_path: Path) -> None:
    train = pd.DataFrame(
        {
            "colour": ["red", "blue", "green", "red"] * 10,
            "size": np.arange(40, dtype=float),
            "label": ["a", "b"] * 20,
        }
    )
    test = pd.DataFrame({"colour": ["purple", "blue"], "size": [1.0, 2.0], "label": ["a", "b"]})
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_feather(tmp_path / "test.feather")
    dataset = load(tmp_path / "train.csv", target="label", test=str(tmp_path / "test.feather"))
    colour, size = dataset.task.features
    assert colour.rule == ONE_HOT and colour.categories == ("blue", "green", "red")
    assert size.rule == NUMERIC
    # A value the training rows never held is all zeros; a seen one its own column.
    np.testing.assert_array_equal(dataset.x_test[:, :3], [[0, 0, 0], [1, 0, 0]])
    assert dataset.x_train.shape == (40, 4) and len(dataset.y_test) == 2


def test_columns_chosen_and_ignored(wine_csv: Path) -> None:
    chosen = load(wine_csv, target="target", columns=("alcohol", "hue"))
    assert [f.name for f in chosen.task.features] == ["alcohol", "hue"]
    ignored = load(wine_csv, target="target", ignore_columns=("proline",))
    assert "proline" not in [f.name for f in ignored.task.features]
    assert ignored.task.inputs == 12


def test_arrays_of_any_shape(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (90, 8, 8, 3)).astype(np.uint8)
    labels = np.repeat(["cat", "dog", "emu"], 30)
    np.savez(tmp_path / "images.npz", x=images, y=labels)
    dataset = load(tmp_path / "images.npz")
    assert dataset.task.features[0].rule == PIXELS and dataset.task.inputs == 8 * 8 * 3
    assert dataset.x_train.max() <= 1.0 and dataset.task.classes == ("cat", "dog", "emu")
    values = rng.normal(size=(60, 5))
    np.save(tmp_path / "x.npy", values)
    np.save(tmp_path / "y.npy", values @ np.arange(5.0))
    regression = load(tmp_path / "x.npy", target=str(tmp_path / "y.npy"))
    assert regression.task.regression and regression.task.features[0].rule == NUMERIC
    assert len(regression.y_train) + len(regression.y_test) == 60


def test_in_memory_data_is_written_once_by_content(tmp_path: Path) -> None:
    from tuner.api._data import in_memory_source

    frame = load_wine(as_frame=True).frame
    first = in_memory_source(frame, tmp_path)
    assert first is not None and first.endswith(".parquet")
    assert in_memory_source(frame.copy(), tmp_path) == first
    changed = frame.copy()
    changed.iloc[0, 0] += 1
    assert in_memory_source(changed, tmp_path) != first
    pair = in_memory_source((np.zeros((4, 2)), np.arange(4)), tmp_path)
    assert pair is not None and set(np.load(pair).files) == {"x", "y"}
    assert in_memory_source("mnist", tmp_path) is None


def test_mnist_shaped_data_keeps_the_seed_task(synthetic_npz: Path) -> None:
    dataset = load(synthetic_npz)
    assert dataset.task == Task()  # 784 pixels, ten digits: what old studies recorded


# -- standardisation: per fold, from training rows only ----------------------------------


def test_each_fold_is_standardised_by_its_own_training_rows(diabetes_parquet: Path) -> None:
    dataset = load(diabetes_parquet, target="target")
    folds = repeated_folds(dataset.y_train, 3, [42], dataset.task)
    arrays = fold_arrays(dataset, folds)
    for (train, validation), (stacked_train, stacked_val) in zip(folds, arrays.splits, strict=True):
        x_train = arrays.x[stacked_train]
        np.testing.assert_allclose(x_train.mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(x_train.std(axis=0), 1, atol=1e-4)
        # The validation rows are scaled by the training part's statistics, not their own.
        raw = dataset.x_train
        expected = (raw[validation] - raw[train].mean(axis=0)) / raw[train].std(axis=0)
        np.testing.assert_allclose(arrays.x[stacked_val], expected, atol=1e-4)
        y = dataset.y_train.astype(np.float64)
        expected_y = (y[validation] - y[train].mean()) / y[train].std()
        np.testing.assert_allclose(arrays.y[stacked_val], expected_y, atol=1e-4)
        # Changing a validation row changes nothing the fold trains on: no leakage.
        leaked = dataset.x_train.copy()
        leaked[validation] += 1000.0
        other = fold_arrays(
            type(dataset)(leaked, dataset.y_train, dataset.x_test, dataset.y_test, dataset.task),
            folds,
        )
        np.testing.assert_array_equal(other.x[stacked_train], x_train)


def test_the_test_set_is_scaled_by_all_training_rows_only(diabetes_parquet: Path) -> None:
    dataset = load(diabetes_parquet, target="target")
    scaled, scaler = final_arrays(dataset)
    np.testing.assert_allclose(scaled.x_train.mean(axis=0), 0, atol=1e-5)
    expected = (dataset.x_test - dataset.x_train.mean(axis=0)) / dataset.x_train.std(axis=0)
    np.testing.assert_allclose(scaled.x_test, expected, atol=1e-4)
    assert scaler.target_mean == pytest.approx(float(dataset.y_train.mean()), rel=1e-6)


def test_pixels_and_one_hot_are_not_copied_or_scaled(synthetic_npz: Path) -> None:
    dataset = load(synthetic_npz)
    arrays = fold_arrays(dataset, repeated_folds(dataset.y_train, 3, [1]))
    assert arrays.x is dataset.x_train  # the seed's path: no copy, the same rows


def test_regression_folds_are_plain_shuffled_k_fold() -> None:
    folds = shuffled_folds(10, 3, seed=5)
    assert sorted(np.concatenate([v for _, v in folds]).tolist()) == list(range(10))
    assert sorted(len(v) for _, v in folds) == [3, 3, 4]
    assert [v.tolist() for _, v in folds] == [v.tolist() for _, v in shuffled_folds(10, 3, 5)]


# -- bad data: one line, the column and the fix ------------------------------------------


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "t.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False) if name.endswith(".csv") else frame.to_parquet(path)
    return path


def good(n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.normal(size=n), "y": [0, 1, 2] * (n // 3)}
    )


@pytest.mark.parametrize(
    ("change", "target", "message"),
    [
        (lambda f: f, "label", r"no column 'label' to use as --target; its columns: 'a', 'b', 'y'"),
        (
            lambda f: f.assign(a=[np.nan, *f.a[1:]]),
            "y",
            r"column 'a' has 1 missing.*--drop-missing",
        ),
        (lambda f: f.assign(b=[np.inf, -np.inf, *f.b[2:]]), "y", r"column 'b' has 2 missing"),
        (lambda f: f.assign(y=[np.nan, *f.y[1:]]), "y", r"column 'y' has 1 missing"),
        (lambda f: f.assign(y=7), "y", r"target 'y' has the same value \(7\) in every row"),
        (
            lambda f: f.assign(a=["1.5", "2", "x"] * 10),
            "y",
            r"column 'a' mixes numbers and text \(\d+ numbers, \d+ text values such as 'x'\)",
        ),
        (
            lambda f: f.assign(y=list(range(30))),
            "y",
            r"cannot make 3 folds.*30 classes.*--task regression",
        ),
        (lambda f: f[["y"]], "y", r"no feature columns besides the target 'y'"),
        (
            lambda f: f.assign(a=pd.to_datetime(["2020-01-01"] * 30)),
            "y",
            r"column 'a' holds dates or times",
        ),
    ],
)
def test_bad_tables_are_refused_in_one_line(
    tmp_path: Path, change: object, target: str, message: str
) -> None:
    path = write(tmp_path, change(good()), "t.parquet")  # type: ignore[operator]
    with pytest.raises(TunerError, match=message) as refused:
        dataset = load(path, target=target)
        check_foldable(dataset.y_train, 3, str(path), dataset.task)
    assert "\n" not in str(refused.value)


def test_missing_rows_dropped_on_request(tmp_path: Path, caplog) -> None:
    frame = good(60)
    frame.loc[[3, 10], "a"] = np.nan
    frame.loc[10, "b"] = np.inf  # one row bad twice: counted once
    path = write(tmp_path, frame)
    dataset = load(path, target="y", drop_missing=True)
    assert len(dataset.y_train) + len(dataset.y_test) == 58
    assert "--drop-missing left out 2 of 60 rows" in caplog.text


def test_limits_on_classes_categories_and_size(tmp_path: Path) -> None:
    many = pd.DataFrame({"a": np.arange(MAX_CLASSES + 1.0), "y": np.arange(MAX_CLASSES + 1)})
    with pytest.raises(TunerError, match=r"1001 classes; at most 1000.*--task regression"):
        load(write(tmp_path, many, "many.parquet"), target="y", task="classification")
    rows = 2 * MAX_CATEGORIES  # 1600 of them train (20% held out): 1600 distinct ids
    ids = pd.DataFrame({"id": [f"u{i}" for i in range(rows)], "y": [0, 1] * MAX_CATEGORIES})
    with pytest.raises(TunerError, match=r"'id' has 1600 distinct values.*--ignore-columns"):
        load(write(tmp_path, ids, "ids.parquet"), target="y")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(TunerError, match=r"the file is empty"):
        load(tmp_path / "empty.csv", target="y")
    (tmp_path / "header.csv").write_text("a,y\n")
    with pytest.raises(TunerError, match=r"the table has no rows"):
        load(tmp_path / "header.csv", target="y")
    (tmp_path / "image.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(TunerError, match=r"not a text CSV file"):
        load(tmp_path / "image.csv", target="y")
    (tmp_path / "ragged.csv").write_text('a,y\n1,2\n"unclosed,3\n')
    with pytest.raises(TunerError, match=r"not a readable csv table"):
        load(tmp_path / "ragged.csv", target="y")
    (tmp_path / "fake.parquet").write_text("not parquet")
    with pytest.raises(TunerError, match=r"not a readable parquet table"):
        load(tmp_path / "fake.parquet", target="y")


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    huge = tmp_path / "huge.csv"
    with open(huge, "wb") as handle:
        handle.truncate(MAX_TABLE_BYTES + 1)  # sparse: no disk is spent, stat says 2 GiB
    with pytest.raises(TunerError, match=r"at most 2147483648 bytes per table"):
        load(huge, target="y")


def test_more_inputs_than_the_limit_are_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "wide.npz", x=np.zeros((6, MAX_FEATURES + 1), np.float32), y=[0, 1] * 3)
    with pytest.raises(TunerError, match=r"65537 values per row; at most 65536"):
        load(tmp_path / "wide.npz")


def test_choices_that_do_not_fit_the_source_are_refused_before_reading() -> None:
    with pytest.raises(TunerError, match=r"a table needs --target COLUMN"):
        DatasetSpec.parse("/nowhere/t.csv")
    with pytest.raises(TunerError, match=r"--target names a table's column"):
        DatasetSpec.parse("mnist", target="label")
    with pytest.raises(TunerError, match=r"unknown --task 'clustering'"):
        DatasetSpec.parse("/nowhere/t.csv", target="y", task="clustering")
    with pytest.raises(TunerError, match=r"leave --test-fraction out"):
        DatasetSpec.parse("/nowhere/t.csv", target="y", test="/nowhere/u.csv", test_fraction=0.2)


def test_hostile_class_and_column_names_are_described_inert(tmp_path: Path) -> None:
    frame = pd.DataFrame({"\x1b[2Jcol": ["a\x07", "b"] * 15, "y": ["\x1b]0;pwned\x07", "ok"] * 15})
    dataset = load(write(tmp_path, frame, "t.parquet"), target="y")
    assert dataset.task.describe().isprintable() and "\\x1b]0;pwned" in dataset.task.describe()
    assert all(f.describe().isprintable() for f in dataset.task.features)


def test_a_hostile_column_name_cannot_act_on_the_terminal(tmp_path: Path) -> None:
    frame = pd.DataFrame({"\x1b[31mred": [np.nan, 1.0, 2.0], "y": [0, 1, 0]})
    with pytest.raises(TunerError) as refused:
        load(write(tmp_path, frame, "t.parquet"), target="y")
    assert "\x1b" not in str(refused.value) and "\\x1b[31mred" in str(refused.value)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_file_named_as_a_csv_is_read_or_refused_in_one_line(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(content)
    try:
        dataset = load(path, target="y")
    except TunerError as refused:
        # One line, and nothing from the file that could act on a terminal.
        assert str(refused).isprintable()
    else:
        assert np.isfinite(dataset.x_train).all() and len(dataset.y_train) >= 1
        assert dataset.task.describe().isprintable()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cells=st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(-5, 5),
            st.text(max_size=3),
            st.none(),
        ),
        min_size=8,
        max_size=40,
    ),
    labels=st.lists(
        st.one_of(st.integers(0, 2), st.floats(-3, 3), st.text(max_size=2)), min_size=8
    ),
)
def test_any_table_is_encoded_or_refused_in_one_line(
    tmp_path: Path, cells: list[object], labels: list[object]
) -> None:
    n = min(len(cells), len(labels))
    frame = pd.DataFrame(
        {"a": pd.Series(cells[:n], dtype=object), "y": pd.Series(labels[:n], dtype=object)}
    )
    path = tmp_path / "fuzz.parquet"
    try:
        frame.to_parquet(path)
    except Exception:  # pyarrow cannot store every mix: not a file a user could have
        return
    try:
        dataset = load(path, target="y")
    except TunerError as refused:
        assert str(refused).isprintable()
    else:
        assert np.isfinite(dataset.x_train).all()
        assert dataset.x_train.shape[1] == dataset.task.inputs
        assert dataset.task.describe().isprintable()
        assert all(f.describe().isprintable() for f in dataset.task.features)
