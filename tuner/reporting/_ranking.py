"""Ranked results of a study: the table `tuner launch` ends with, as text, HTML and records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState
from rich.console import Console
from rich.table import Table

from tuner.progress import format_units
from tuner.reporting import _html
from tuner.study import FoldResult, StudyDefinition, completed_folds, schema


@dataclass(frozen=True)
class RankedPoint:
    """One evaluated grid point: its rank, widths and cross-validation numbers.

    Attributes:
        rank: 1 for the best mean CV accuracy.
        trial_number: The COMPLETE trial that holds the point's result.
        units: Hidden-layer widths, in layer order.
        mean_accuracy: Mean validation accuracy over the folds (the trial's value).
        std_accuracy: Its standard deviation over the folds.
        seconds: Wall time of the trial.
        loss_mean: Mean validation loss over the folds (None where not recorded).
        loss_std: Its standard deviation over the folds (None where not recorded).
        train_seconds: Time spent training, summed over the folds (None where not recorded).
        folds: Every fold's accuracy, loss, time and per-epoch curves, fold 0 first.
    """

    rank: int
    trial_number: int
    units: tuple[int, ...]
    mean_accuracy: float
    std_accuracy: float
    seconds: float
    loss_mean: float | None = None
    loss_std: float | None = None
    train_seconds: float | None = None
    # Curves are long; the repr stays one line.
    folds: tuple[FoldResult, ...] = field(default=(), repr=False)

    def to_record(self, study_name: str, layer_names: list[str]) -> dict[str, Any]:
        """A flat, JSON-ready row: one column per layer's units and per fold's numbers."""
        record: dict[str, Any] = {
            "study": study_name,
            "rank": self.rank,
            "trial": self.trial_number,
            **dict(zip(layer_names, self.units, strict=True)),
            "units": "-".join(map(str, self.units)),
            "cv_accuracy_mean": self.mean_accuracy,
            "cv_accuracy_std": self.std_accuracy,
            "cv_loss_mean": self.loss_mean,
            "cv_loss_std": self.loss_std,
        }
        for fold in self.folds:
            record[f"fold_{fold.fold}_accuracy"] = fold.accuracy
            record[f"fold_{fold.fold}_loss"] = fold.loss
        record["train_seconds"] = self.train_seconds
        record["wall_seconds"] = self.seconds
        return record


def _optional(attrs: dict[str, Any], key: str) -> float | None:
    value = attrs.get(key)
    return None if value is None else float(value)


def ranked_points(study: optuna.Study, definition: StudyDefinition) -> list[RankedPoint]:
    """COMPLETE trials, best mean CV accuracy first (ties: lower trial number first)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    ordered = sorted(complete, key=lambda t: (-(t.value or 0.0), t.number))
    return [
        RankedPoint(
            rank=rank,
            trial_number=trial.number,
            units=definition.units_of(trial.params),
            mean_accuracy=float(trial.value or 0.0),
            std_accuracy=float(trial.user_attrs.get(schema.ACCURACY_STD, 0.0)),
            seconds=float(trial.user_attrs.get(schema.WALL_SECONDS, 0.0)),
            loss_mean=_optional(trial.user_attrs, schema.LOSS_MEAN),
            loss_std=_optional(trial.user_attrs, schema.LOSS_STD),
            train_seconds=_optional(trial.user_attrs, schema.TRAIN_SECONDS),
            folds=tuple(result for _, result in sorted(completed_folds(trial).items())),
        )
        for rank, trial in enumerate(ordered, start=1)
    ]


def ranking_title(study_name: str, definition: StudyDefinition, points: list[RankedPoint]) -> str:
    """``NAME: k/N grid points (regularisation)``, the ranked grid's caption everywhere."""
    return (
        f"{study_name}: {len(points)}/{definition.grid_size} grid points "
        f"({definition.regularisation})"
    )


def _cells(point: RankedPoint) -> list[str]:
    return [
        str(point.rank),
        str(point.trial_number),
        *(str(u) for u in point.units),
        f"{point.mean_accuracy:.4f} ± {point.std_accuracy:.4f}",
        f"{point.seconds:.1f} s",
    ]


def _header(definition: StudyDefinition) -> list[str]:
    return ["rank", "trial", *definition.layer_names, "CV accuracy", "time"]


def ranking_html(study_name: str, definition: StudyDefinition, points: list[RankedPoint]) -> str:
    """The ranked grid as an HTML table, captioned like the terminal's."""
    return _html.table(
        _header(definition),
        [_cells(point) for point in points],
        caption=ranking_title(study_name, definition, points),
    )


def render_ranking(
    console: Console, study_name: str, definition: StudyDefinition, points: list[RankedPoint]
) -> None:
    """Print the ranked grid and the best point."""
    table = Table(title=ranking_title(study_name, definition, points))
    for column in _header(definition):
        table.add_column(column, justify="right")
    for point in points:
        table.add_row(*_cells(point))
    console.print(table)
    if points:
        best = points[0]
        console.print(
            f"best {study_name}: {format_units(definition.layer_names, best.units)} "
            f"CV accuracy {best.mean_accuracy:.4f} ± {best.std_accuracy:.4f}",
            highlight=False,
        )
