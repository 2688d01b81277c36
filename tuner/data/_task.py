"""What a study learns from its data: the task, its classes, and what became of each column.

A :class:`Task` is derived from the data when it is loaded and recorded on every study
made from it, so that a worker, ``tuner status`` and the report know the model's input
width, its output layer, the score's name and the class names without loading the data.
The default is the seed study's: 784 pixels scaled to [0, 1], ten digit classes. MNIST-
shaped data yields exactly that default, so studies made before tasks existed (which
record none) read back as what they are.

Invariant: the model, the loss and the score follow from the task alone. Classification
trains a softmax over ``len(classes)`` outputs with sparse categorical cross-entropy and
scores accuracy; regression trains one linear output with the mean squared error of the
standardised target and scores R² (1 - SSE/SST on the validation rows, as scikit-learn's
``r2_score`` and scikeras' ``KerasRegressor.score``). Both scores are maximised, so every
ranking, interval and test reads "higher is better" whatever the task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuner.data._shown import plain
from tuner.errors import TunerError

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)

PIXELS = "pixels"
"""Integer grey levels 0..255 divided by 255, as the seed study does; not standardised."""
NUMERIC = "numeric"
"""Numbers as they are, then standardised with each fold's training rows' mean and
standard deviation (the test set with all training rows')."""
ONE_HOT = "one-hot"
"""Text or categorical values: one 0/1 feature per category seen in the training rows
(sorted), all zeros for a value the training rows never held; not standardised."""
RULES = (PIXELS, NUMERIC, ONE_HOT)


@dataclass(frozen=True)
class Feature:
    """One source column (or array) and the features it became.

    Attributes:
        name: The column's name (``x`` for an array's flattened values).
        rule: What was done to it: :data:`PIXELS`, :data:`NUMERIC` or :data:`ONE_HOT`.
        width: How many model inputs it became.
        categories: For a one-hot column, its categories in feature order.
    """

    name: str
    rule: str
    width: int
    categories: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "rule": self.rule, "width": self.width}
        if self.categories:
            data["categories"] = list(self.categories)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Feature:
        if not isinstance(data, dict) or data.get("rule") not in RULES:
            raise ValueError(f"not a feature record: {str(data)[:80]}")
        return cls(
            name=str(data["name"]),
            rule=str(data["rule"]),
            width=int(data["width"]),
            categories=tuple(str(c) for c in data.get("categories", ())),
        )

    def describe(self) -> str:
        """``colour: one-hot (3: blue, green, red)``: how ``tuner data`` shows it."""
        name = plain(self.name)
        if self.rule == ONE_HOT:
            listed = ", ".join(plain(c) for c in self.categories[:6])
            more = ", ..." if len(self.categories) > 6 else ""
            return f"{name}: one-hot ({self.width}: {listed}{more})"
        if self.rule == PIXELS:
            return f"{name}: {self.width} pixel(s) scaled to [0, 1]"
        noun = "feature" if self.width == 1 else f"{self.width} features"
        return f"{name}: numeric {noun}, standardised per fold"


DIGITS = tuple(str(digit) for digit in range(10))
MNIST_FEATURES = (Feature("pixels", PIXELS, 784),)


@dataclass(frozen=True)
class Task:
    """The learning task a study's data poses (see the module docstring).

    Attributes:
        kind: :data:`CLASSIFICATION` or :data:`REGRESSION`.
        classes: Class names in label order (label ``i`` is ``classes[i]``); empty for
            regression.
        features: Each source column and the features it became, in model-input order.
        target: The target column's name, for a table; None for arrays.
    """

    kind: str = CLASSIFICATION
    classes: tuple[str, ...] = DIGITS
    features: tuple[Feature, ...] = MNIST_FEATURES
    target: str | None = None

    @property
    def inputs(self) -> int:
        """The model's input width."""
        return sum(feature.width for feature in self.features)

    @property
    def outputs(self) -> int:
        """The output layer's width: one unit per class, or one value."""
        return len(self.classes) if self.kind == CLASSIFICATION else 1

    @property
    def regression(self) -> bool:
        return self.kind == REGRESSION

    @property
    def metric(self) -> str:
        """The score's short name: ``accuracy`` or ``r2``."""
        return "r2" if self.regression else "accuracy"

    @property
    def metric_label(self) -> str:
        """The score as people write it: ``accuracy`` or ``R²``."""
        return "R²" if self.regression else "accuracy"

    @property
    def score_range(self) -> tuple[float, float]:
        """Where the score can lie: accuracy in [0, 1]; R² at most 1 (no lower bound)."""
        return (-math.inf, 1.0) if self.regression else (0.0, 1.0)

    @property
    def loss_label(self) -> str:
        """The training loss, as the report names it."""
        if self.regression:
            return "MSE (standardised target)"
        return "cross-entropy"

    @property
    def standardised(self) -> np.ndarray:
        """Per model input, True where it is standardised per fold (:data:`NUMERIC`)."""
        return np.concatenate(
            [np.full(f.width, f.rule == NUMERIC) for f in self.features] or [np.zeros(0, bool)]
        )

    @property
    def scales_data(self) -> bool:
        """Whether any input, or the target, is standardised per fold."""
        return self.regression or any(f.rule == NUMERIC for f in self.features)

    def describe(self) -> str:
        """One line: ``classification, 3 classes (a, b, c); 12 inputs from 5 columns``
        (names from the file shown escaped where they are not plain words)."""
        if self.regression:
            head = f"regression of {plain(self.target)}" if self.target else "regression"
        else:
            listed = ", ".join(plain(c) for c in self.classes[:8])
            more = ", ..." if len(self.classes) > 8 else ""
            head = f"classification, {len(self.classes)} classes ({listed}{more})"
        columns = len(self.features)
        source = f" from {columns} column{'s' if columns != 1 else ''}" if self.target else ""
        return f"{head}; {self.inputs} inputs{source}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "classes": list(self.classes),
            "features": [feature.to_dict() for feature in self.features],
        }
        if self.target is not None:
            data["target"] = self.target
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Task:
        """The task recorded on a study (storage is untrusted: checked, ValueError if not)."""
        if not isinstance(data, dict) or data.get("kind") not in TASKS:
            raise ValueError("not a task record")
        task = cls(
            kind=str(data["kind"]),
            classes=tuple(str(c) for c in data.get("classes", ())),
            features=tuple(Feature.from_dict(f) for f in data.get("features", ())),
            target=None if data.get("target") is None else str(data["target"]),
        )
        if task.inputs < 1 or (task.kind == CLASSIFICATION and len(task.classes) < 2):
            raise ValueError("a task record without inputs or classes")
        return task


def check_task_name(task: str | None) -> str | None:
    """``--task``: None (inferred from the target) or one of :data:`TASKS`."""
    if task is None or task in TASKS:
        return task
    raise TunerError(f"unknown --task '{task}'; choose one of {', '.join(TASKS)}")
