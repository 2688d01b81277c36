"""Ranked results of a study: the table `tuner launch` ends with."""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.trial import TrialState
from rich.console import Console
from rich.table import Table

from tuner.progress import format_units
from tuner.study import StudyDefinition, schema


@dataclass(frozen=True)
class RankedPoint:
    rank: int
    trial_number: int
    units: tuple[int, ...]
    mean_accuracy: float
    std_accuracy: float
    seconds: float


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
        )
        for rank, trial in enumerate(ordered, start=1)
    ]


def render_ranking(
    console: Console, study_name: str, definition: StudyDefinition, points: list[RankedPoint]
) -> None:
    table = Table(
        title=f"{study_name}: {len(points)}/{definition.grid_size} grid points "
        f"({definition.regularisation})"
    )
    table.add_column("rank", justify="right")
    table.add_column("trial", justify="right")
    for name in definition.layer_names:
        table.add_column(name, justify="right")
    table.add_column("CV accuracy", justify="right")
    table.add_column("time", justify="right")
    for point in points:
        table.add_row(
            str(point.rank),
            str(point.trial_number),
            *(str(u) for u in point.units),
            f"{point.mean_accuracy:.4f} ± {point.std_accuracy:.4f}",
            f"{point.seconds:.1f} s",
        )
    console.print(table)
    if points:
        best = points[0]
        console.print(
            f"best {study_name}: {format_units(definition.layer_names, best.units)} "
            f"CV accuracy {best.mean_accuracy:.4f} ± {best.std_accuracy:.4f}",
            highlight=False,
        )
