"""What training leaves on a trial or a study, as plain JSON-ready records.

They live beside the schema, not in the training package, because the scheduler
(reusing an interrupted attempt's folds) and the report read them without training
anything, and so must not import a deep-learning framework to do it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import optuna

from tuner.study import schema


@dataclass(frozen=True)
class FoldResult:
    """One fold of one grid point: final validation accuracy and loss, and its curves."""

    fold: int
    accuracy: float
    loss: float
    seconds: float
    history: dict[str, list[float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def completed_folds(trial: optuna.trial.FrozenTrial) -> dict[int, FoldResult]:
    """Folds a trial (or an earlier, interrupted attempt at its point) already finished."""
    results = {}
    for key, value in trial.user_attrs.items():
        fold = schema.fold_of_key(key)
        if fold is not None:
            results[fold] = FoldResult(**value)
    return results


@dataclass(frozen=True)
class FinalFit:
    """What the report needs from a final fit; JSON-serialisable, stored on the study."""

    trial_number: int
    units: list[int]
    epochs: int
    history: dict[str, list[float]]
    test_loss: float
    test_accuracy: float
    train_loss: float
    seconds: float
    model_path: str
    # Per layer, evenly spaced quantiles of its trained kernel weights: enough to draw
    # the distribution faithfully on any machine, small enough to live in the database.
    weight_quantiles: dict[str, list[float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinalFit:
        return cls(**data)


def stored_final_fit(study: optuna.Study) -> FinalFit | None:
    """The final fit recorded on a study, or None when the report has not run yet."""
    data = study.user_attrs.get(schema.FINAL_FIT)
    return FinalFit.from_dict(data) if data else None
