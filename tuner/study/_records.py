"""What training leaves on a trial or a study, as plain JSON-ready records.

They live beside the schema, not in the training package, because the scheduler
(reusing an interrupted attempt's folds) and the report read them without training
anything, and so must not import a deep-learning framework to do it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
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
class SeedFit:
    """One of a winner's final fits, from one seed: its test numbers and loss curves.

    Attributes:
        seed: The seed of its shuffles (its initial weights derive from it); None on a
            record from before seeds were recorded, whose one fit used the fold seed.
        test_loss: Loss on the test set after the last epoch.
        test_accuracy: Accuracy on the test set after the last epoch.
        train_loss: The last epoch's training loss (Dropout active).
        seconds: Its training time.
        history: Per-epoch ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` (the
            validation data is the test set).
    """

    seed: int | None
    test_loss: float
    test_accuracy: float
    train_loss: float
    seconds: float
    history: dict[str, list[float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _spread(values: list[float]) -> float | None:
    """Sample standard deviation (ddof 1); None under two values."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return float((sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5)


@dataclass(frozen=True)
class FinalFit:
    """What the report needs from a final fit; JSON-serialisable, stored on the study.

    The top-level numbers, curves, model and weights are those of the first seed's fit
    (the only one before ``--final-seeds``); ``seed_fits`` holds every seed's fit, the
    first one included, and the ``*_mean``/``*_std`` properties summarise them.
    """

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
    # Every seed's fit, first seed first; empty on records from before --final-seeds.
    seed_fits: tuple[SeedFit, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinalFit:
        fits = tuple(SeedFit(**fit) for fit in data.get("seed_fits", ()))
        return cls(**{**data, "seed_fits": fits})

    @property
    def runs(self) -> list[SeedFit]:
        """Every seed's fit, first seed first (a record from before seeds: its one fit)."""
        if self.seed_fits:
            return list(self.seed_fits)
        return [
            SeedFit(
                None,
                self.test_loss,
                self.test_accuracy,
                self.train_loss,
                self.seconds,
                self.history,
            )
        ]

    @property
    def test_accuracy_mean(self) -> float:
        """Mean test accuracy over the seeds' fits."""
        return _mean([run.test_accuracy for run in self.runs])

    @property
    def test_accuracy_std(self) -> float | None:
        """Sample standard deviation of the seeds' test accuracies (None: one fit)."""
        return _spread([run.test_accuracy for run in self.runs])

    @property
    def test_loss_mean(self) -> float:
        """Mean test loss over the seeds' fits."""
        return _mean([run.test_loss for run in self.runs])

    @property
    def test_loss_std(self) -> float | None:
        """Sample standard deviation of the seeds' test losses (None: one fit)."""
        return _spread([run.test_loss for run in self.runs])

    @property
    def train_loss_mean(self) -> float:
        """Mean last-epoch training loss over the seeds' fits."""
        return _mean([run.train_loss for run in self.runs])

    def first(self, seeds: int) -> FinalFit:
        """This record with its first ``seeds`` fits only (a report asking for fewer)."""
        if seeds >= len(self.runs):
            return self
        return replace(self, seed_fits=tuple(self.runs[:seeds]))


def _mean(values: list[float]) -> float:
    # One value is returned as it is (no rounding through a sum): one seed's report
    # shows exactly the number it stored.
    return values[0] if len(values) == 1 else float(sum(values) / len(values))


def stored_final_fit(study: optuna.Study) -> FinalFit | None:
    """The final fit recorded on a study, or None when the report has not run yet."""
    data = study.user_attrs.get(schema.FINAL_FIT)
    return FinalFit.from_dict(data) if data else None
