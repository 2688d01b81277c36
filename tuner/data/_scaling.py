"""Per-fold standardisation: statistics from each fold's training rows only.

Numeric features (:data:`~tuner.data.NUMERIC`) and a regression's target are
standardised with the mean and standard deviation of the rows a model trains on: each
fold's training part during cross-validation, all training rows for the final fit (the
test rows are scaled with those). No statistic of a validation fold or of the test set
reaches a model, so CV scores are not flattered by leakage (``tests/data`` checks it).

The trainers index one array with every fold's rows, so the folds' differently scaled
copies are stacked into one array and each fold's indices point into its own copy
(:func:`fold_arrays`): the trainers themselves never change. Data that needs no scaling
(the seed's pixels, a classification of one-hot columns) is passed on as it is, uncopied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tuner.data._datasets import Dataset

Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class FoldArrays:
    """The training rows as the folds see them: ``x[split[0]]`` trains fold ``f``.

    Attributes:
        x: Model inputs (every fold's scaled copy, stacked, where scaling applies).
        y: Targets, likewise (a regression's standardised per fold).
        splits: Each fold's (training, validation) indices into ``x`` and ``y``.
    """

    x: np.ndarray
    y: np.ndarray
    splits: list[Split]


@dataclass(frozen=True)
class Standardiser:
    """Mean and scale of the standardised inputs (and a regression's target) of some rows."""

    columns: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    target_mean: float = 0.0
    target_scale: float = 1.0

    @classmethod
    def fit(cls, dataset: Dataset, rows: np.ndarray | None = None) -> Standardiser:
        """The statistics of ``rows`` of the training set (all of them by default)."""
        task = dataset.task
        columns = np.flatnonzero(task.standardised)
        x = dataset.x_train if rows is None else dataset.x_train[rows]
        part = x[:, columns].astype(np.float64)
        mean = part.mean(axis=0) if len(part) else np.zeros(len(columns))
        scale = part.std(axis=0) if len(part) else np.ones(len(columns))
        scale[scale == 0] = 1.0  # a constant column stays constant (zero), not NaN
        if not task.regression:
            return cls(columns, mean, scale)
        y = (dataset.y_train if rows is None else dataset.y_train[rows]).astype(np.float64)
        spread = float(y.std())
        return cls(columns, mean, scale, float(y.mean()), spread if spread > 0 else 1.0)

    def inputs(self, x: np.ndarray) -> np.ndarray:
        """``x`` with its standardised columns scaled (a copy; ``x`` is left alone)."""
        if not len(self.columns):
            return x
        scaled = x.copy()
        scaled[:, self.columns] = ((x[:, self.columns] - self.mean) / self.scale).astype(np.float32)
        return scaled

    def target(self, y: np.ndarray) -> np.ndarray:
        """A regression's values standardised; class ids unchanged."""
        if y.dtype.kind != "f":
            return y
        return ((y.astype(np.float64) - self.target_mean) / self.target_scale).astype(np.float32)


def fold_arrays(dataset: Dataset, folds: Sequence[Split]) -> FoldArrays:
    """Every fold's rows, scaled by its own training part's statistics."""
    if not dataset.task.scales_data:
        return FoldArrays(dataset.x_train, dataset.y_train, list(folds))
    n = len(dataset.y_train)
    xs, ys, splits = [], [], []
    for fold, (train, validation) in enumerate(folds):
        scaler = Standardiser.fit(dataset, train)
        xs.append(scaler.inputs(dataset.x_train))
        ys.append(scaler.target(dataset.y_train))
        splits.append((train + fold * n, validation + fold * n))
    return FoldArrays(np.concatenate(xs), np.concatenate(ys), splits)


def final_arrays(dataset: Dataset) -> tuple[Dataset, Standardiser]:
    """The whole training set and the test set, scaled by the training rows' statistics,
    and those statistics (a regression's predictions go back through them)."""
    scaler = Standardiser.fit(dataset)
    if not dataset.task.scales_data:
        return dataset, scaler
    scaled = Dataset(
        x_train=scaler.inputs(dataset.x_train),
        y_train=scaler.target(dataset.y_train),
        x_test=scaler.inputs(dataset.x_test),
        y_test=scaler.target(dataset.y_test),
        task=dataset.task,
    )
    return scaled, scaler
