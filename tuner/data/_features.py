"""From a user's table or arrays to model inputs and a target: the documented encoding rules.

Every rule is decided on the training rows alone and applied unchanged to the test rows:

* numeric columns (integers, floats, booleans as 0/1) stay numbers, standardised later
  per fold (:mod:`tuner.data._scaling`), never here, so no statistic of a validation fold
  or of the test set reaches training;
* text and pandas categorical columns become one-hot features, one per category the
  training rows hold (sorted as text); a test value they never held is all zeros;
* image-like arrays (integers 0..255, of more than two dimensions or of ``uint8``, and
  MNIST's own shapes) are divided by 255 as the seed study does; other arrays are
  flattened to ``(n, features)`` and treated as numeric columns.

The target decides the task unless ``--task`` does: text, booleans and integers (at most
:data:`MAX_CLASSES` distinct values) are classes, as are floats that are all whole numbers
with at most :data:`FEW_CLASSES` distinct values; other numbers are a regression.
Bad data is refused here, before any model is built, in one line that names the column,
how many rows, and the fix (:class:`~tuner.errors.TunerError`); any name read from a file
is shown escaped, so it cannot act on a terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tuner.data._limits import MAX_CATEGORIES, MAX_CLASSES, MAX_FEATURES
from tuner.data._shown import plain, shown
from tuner.data._task import (
    CLASSIFICATION,
    NUMERIC,
    ONE_HOT,
    PIXELS,
    REGRESSION,
    Feature,
    Task,
)
from tuner.errors import TunerError

MNIST_SHAPES = ((28, 28), (784,))
FEW_CLASSES = 20
"""A float target of whole numbers is taken as class labels up to this many distinct values
(``1.0, 2.0``: labels saved as floats); more is a quantity, a regression."""


def _rows(mask: np.ndarray, limit: int = 3) -> str:
    rows = np.flatnonzero(mask)
    listed = ", ".join(str(int(r)) for r in rows[:limit])
    return listed + (", ..." if len(rows) > limit else "")


# -- the target -------------------------------------------------------------------------


def _is_text(values: np.ndarray) -> bool:
    return values.dtype.kind in "OSU"


def _integral(values: np.ndarray) -> bool:
    if values.dtype.kind in "iub":
        return True
    return bool(np.all(values == np.round(values)))


def _class_name(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _text_values(values: np.ndarray, what: str, source: str) -> np.ndarray:
    """Text values as ``str``; a mix of text and numbers is refused."""
    kinds = {type(v) for v in values}
    if any(issubclass(k, str) for k in kinds) and any(
        issubclass(k, (int, float, np.number)) and not issubclass(k, bool) for k in kinds
    ):
        raise TunerError(
            f"{source}: {what} mixes numbers and text; make it one type (all numbers, or "
            "all text for categories)"
        )
    return np.array([str(v) for v in values], dtype=object)


def encode_target(
    values: np.ndarray, name: str, source: str, task: str | None
) -> tuple[np.ndarray, str, tuple[str, ...]]:
    """Labels ``0..C-1`` and the class names, or float32 values: ``(y, kind, classes)``.

    Raises:
        TunerError: A constant target, more than :data:`MAX_CLASSES` classes, text for a
            regression, or a target that mixes numbers and text.
    """
    what = f"target {shown(name)}"
    if _is_text(values):
        if task == REGRESSION:
            example = next(iter(values), "")
            raise TunerError(
                f"{source}: {what} holds text (e.g. {shown(example)}); a regression needs "
                "numbers: give a numeric target or --task classification"
            )
        values = _text_values(values, what, source)
        kind = CLASSIFICATION
    else:
        values = values.astype(np.int64) if values.dtype.kind == "b" else values
    distinct = np.unique(values)
    if not _is_text(values):
        if task is None:
            limit = MAX_CLASSES if values.dtype.kind in "iu" else FEW_CLASSES
            kind = CLASSIFICATION if _integral(values) and len(distinct) <= limit else REGRESSION
        else:
            kind = task
        if kind == CLASSIFICATION and not _integral(values):
            raise TunerError(
                f"{source}: {what} holds fractional numbers, not class labels; leave --task "
                "out (or pass --task regression) to predict its values"
            )
    if len(distinct) < 2:
        raise TunerError(
            f"{source}: {what} has the same value ({plain(_class_name(distinct[0]))}) in "
            f"every row: there is nothing to learn"
            if len(distinct)
            else f"{source}: {what} is empty"
        )
    if kind == REGRESSION:
        return values.astype(np.float32), kind, ()
    if len(distinct) > MAX_CLASSES:
        raise TunerError(
            f"{source}: {what} has {len(distinct)} classes; at most {MAX_CLASSES} "
            "(MAX_CLASSES): if it is a quantity, pass --task regression"
        )
    classes = tuple(_class_name(v) for v in distinct)
    return np.searchsorted(distinct, values).astype(np.int32), kind, classes


def apply_target(values: np.ndarray, name: str, task: Task, source: str) -> np.ndarray:
    """A test set's target, encoded as the training rows' was."""
    if task.regression:
        if _is_text(values):
            raise TunerError(f"{source}: target {shown(name)} holds text; expected numbers")
        return values.astype(np.float32)
    names = (
        _text_values(values, f"target {shown(name)}", source)
        if _is_text(values)
        else np.array([_class_name(v) for v in values], dtype=object)
    )
    index = {label: i for i, label in enumerate(task.classes)}
    unknown = sorted({str(v) for v in names if v not in index})
    if unknown:
        raise TunerError(
            f"{source}: the test set holds class(es) {', '.join(shown(u) for u in unknown[:5])} "
            "that no training row has; a model cannot predict a class it never saw"
        )
    return np.array([index[v] for v in names], dtype=np.int32)


# -- arrays -----------------------------------------------------------------------------


def _finite_rows(array: np.ndarray, name: str, source: str) -> None:
    """Refuse an array of floats with NaN or infinity in a row, naming the rows."""
    if array.dtype.kind != "f":
        return
    finite = np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    if not finite.all():
        raise TunerError(
            f"{source}: {name} holds NaN or infinite values in {int((~finite).sum())} "
            f"row(s) (first: {_rows(~finite)}); fill or drop them"
        )


def _real(array: np.ndarray, name: str, source: str) -> None:
    if array.dtype.kind not in "iufb":
        raise TunerError(f"{source}: {name} has dtype {array.dtype}; expected numbers")
    _finite_rows(array, name, source)


def _image_like(array: np.ndarray) -> bool:
    """The rule that scales by 255 instead of standardising (see the module docstring)."""
    if array.dtype.kind not in "iuf" or array.size == 0:
        return False
    if float(array.min()) < 0 or float(array.max()) > 255:
        return False
    if array.shape[1:] in MNIST_SHAPES:
        return True  # the seed's own data, whatever its dtype: as tuner always read it
    return array.dtype.kind in "iu" and (array.ndim >= 3 or array.dtype == np.uint8)


def array_rule(x: np.ndarray) -> str:
    """:data:`PIXELS` or :data:`NUMERIC`, decided on the training array."""
    return PIXELS if _image_like(x) else NUMERIC


def encode_array(x: np.ndarray, name: str, source: str, rule: str) -> np.ndarray:
    """An array of any shape as ``(n, features)`` float32, scaled by the rule."""
    if x.ndim == 0:
        raise TunerError(f"{source}: {name} is a single number; expected one row per example")
    _real(x, name, source)
    if len(x) == 0:
        raise TunerError(f"{source}: {name} is empty")
    flat = x.reshape(len(x), -1) if x.ndim != 1 else x.reshape(len(x), 1)
    if flat.shape[1] > MAX_FEATURES:
        raise TunerError(
            f"{source}: {name} has {flat.shape[1]} values per row; at most {MAX_FEATURES} "
            "(MAX_FEATURES)"
        )
    if rule == PIXELS:
        if float(x.min()) < 0 or float(x.max()) > 255:
            raise TunerError(
                f"{source}: {name} values span {float(x.min())}..{float(x.max())}; the "
                "training images' grey levels are 0..255"
            )
        return (flat.astype(np.float32) / np.float32(255.0)).astype(np.float32)
    return flat.astype(np.float32)


def array_labels(y: np.ndarray, source: str, name: str) -> np.ndarray:
    """Labels or values of an array source as a 1-D array (a one-hot matrix: its argmax)."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2 and y.dtype.kind in "iufb" and len(y):
        one_hot = np.isin(y, (0, 1)).all() and bool(np.all(y.sum(axis=1) == 1))
        if one_hot:
            labels: np.ndarray = y.argmax(axis=1)
            return labels
    if y.ndim != 1:
        raise TunerError(
            f"{source}: {name} has shape {y.shape}; expected (n,) labels or values "
            "(or a one-hot (n, classes) matrix)"
        )
    if y.dtype.kind not in "iufbOU":
        raise TunerError(f"{source}: {name} has dtype {y.dtype}; expected labels or numbers")
    _finite_rows(y, name, source)
    return y


# -- tables -----------------------------------------------------------------------------


def _column_kind(column: Any, name: str, source: str) -> str:
    """NUMERIC or ONE_HOT for a pandas column; anything else refused."""
    import pandas as pd

    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return ONE_HOT
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        if pd.api.types.is_complex_dtype(dtype):
            raise TunerError(f"{source}: column {shown(name)} holds complex numbers")
        return NUMERIC
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        raise TunerError(
            f"{source}: column {shown(name)} holds dates or times; convert it to numbers "
            "(e.g. days since a start) or leave it out with --ignore-columns"
        )
    if pd.api.types.is_string_dtype(dtype) or dtype.kind == "O":
        present = column.dropna().to_numpy()
        kinds = {type(v) for v in present}
        texts = all(issubclass(k, str) for k in kinds)
        numbers = all(issubclass(k, (int, float, np.number)) for k in kinds)
        if kinds and not texts and not numbers:
            raise TunerError(
                f"{source}: column {shown(name)} mixes numbers and text; make it one type "
                "(all numbers, or all text for categories)"
            )
        if numbers:
            return NUMERIC
        parsed = pd.to_numeric(pd.Series(present), errors="coerce").notna().to_numpy()
        if len(present) and parsed.mean() >= 0.5 and not parsed.all():
            example = present[~parsed][0]
            raise TunerError(
                f"{source}: column {shown(name)} mixes numbers and text ({int(parsed.sum())} "
                f"numbers, {int((~parsed).sum())} text values such as {shown(example)}); "
                "clean it, or leave it out with --ignore-columns"
            )
        return ONE_HOT
    raise TunerError(f"{source}: column {shown(name)} has unsupported type {dtype}")


def missing_rows(frame: Any, columns: Sequence[str], source: str, drop: bool) -> np.ndarray:
    """Rows where any of ``columns`` holds a missing value, NaN or infinity.

    Raises:
        TunerError: Unless ``drop`` (``--drop-missing``), at the first column that has
            such a value, naming it, how many rows and which.
    """
    import pandas as pd

    bad = np.zeros(len(frame), dtype=bool)
    for name in columns:
        column = frame[name]
        here = column.isna().to_numpy().copy()
        if pd.api.types.is_float_dtype(column.dtype):
            here |= ~np.isfinite(column.to_numpy(dtype=np.float64, na_value=np.nan))
        if here.any() and not drop:
            raise TunerError(
                f"{source}: column {shown(name)} has {int(here.sum())} missing, NaN or "
                f"infinite value(s) (rows {_rows(here)}); fill them, or pass --drop-missing "
                "to leave such rows out"
            )
        bad |= here
    return bad


def table_features(frame: Any, columns: Sequence[str], source: str) -> tuple[Feature, ...]:
    """How each feature column is encoded, learned from the training rows."""
    features = []
    for name in columns:
        rule = _column_kind(frame[name], name, source)
        if rule == NUMERIC:
            features.append(Feature(str(name), NUMERIC, 1))
            continue
        categories = sorted({str(v) for v in frame[name].dropna().to_numpy()})
        if len(categories) > MAX_CATEGORIES:
            raise TunerError(
                f"{source}: column {shown(name)} has {len(categories)} distinct values; at "
                f"most {MAX_CATEGORIES} categories per column (MAX_CATEGORIES): an identifier "
                "or free text? leave it out with --ignore-columns"
            )
        features.append(Feature(str(name), ONE_HOT, len(categories), tuple(categories)))
    width = sum(f.width for f in features)
    if width > MAX_FEATURES:
        raise TunerError(
            f"{source}: the columns make {width} inputs after one-hot encoding; at most "
            f"{MAX_FEATURES} (MAX_FEATURES): leave wide categorical columns out"
        )
    return tuple(features)


def encode_table(frame: Any, features: Sequence[Feature], source: str) -> np.ndarray:
    """The rows of ``frame`` as model inputs, by the rules learned on the training rows."""
    import pandas as pd

    parts = []
    for feature in features:
        if feature.name not in frame.columns:
            raise TunerError(
                f"{source}: no column {shown(feature.name)}, which the training data has; "
                "the test table needs the same columns"
            )
        column = frame[feature.name]
        if feature.rule == ONE_HOT:
            text = np.array([str(v) for v in column.to_numpy()], dtype=object)
            categories = np.array(feature.categories, dtype=object)
            parts.append((text[:, None] == categories[None, :]).astype(np.float32))
            continue
        numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
        if column.dtype == object and np.isnan(numbers).any():
            raise TunerError(
                f"{source}: column {shown(feature.name)} holds text; the training data's is numeric"
            )
        parts.append(numbers.astype(np.float32)[:, None])
    if not parts:
        return np.zeros((len(frame), 0), np.float32)
    return np.concatenate(parts, axis=1)
