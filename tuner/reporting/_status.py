"""`tuner status`: the live picture of every study in a storage.

Read-only: it never changes a trial, so it is safe to run beside workers and the
dashboard at any time.
"""

from __future__ import annotations

import datetime
import statistics
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tuner.scheduling import DEFAULT_MAX_ATTEMPTS, GridState
from tuner.storages import TrialLedger, recent_durations
from tuner.study import StudyConfig, StudyDefinition, inert, schema, shown_name

RECENT_TRIALS = 50
"""The ETA uses the mean duration of this many latest completed trials."""


@dataclass(frozen=True)
class RunningTrial:
    """A trial in training, as its learning curve in the storage shows it.

    Attributes:
        number: The trial's number.
        units: Its grid point, as messages name it (``l1=512 l2=64 dropout=0.5``).
        worker: ``host/pid`` of the worker training it.
        since: When it started (the worker's clock).
        epoch: The last epoch its curve reached (None before the first is written).
        epochs: Epochs per fold in its study.
        accuracy: Its mean validation accuracy over the folds at ``epoch``.
    """

    number: int
    units: str
    worker: str
    since: datetime.datetime | None
    epoch: int | None = None
    epochs: int | None = None
    accuracy: float | None = None

    def eta_seconds(self, now: datetime.datetime) -> float | None:
        """Seconds left at the pace of its epochs so far (None before the first epoch)."""
        if self.since is None or not self.epoch or self.epochs is None:
            return None
        elapsed = (now - self.since).total_seconds()
        return max(0.0, elapsed / self.epoch * (self.epochs - self.epoch))


@dataclass(frozen=True)
class StudyStatus:
    name: str
    grid_size: int
    complete: int
    running: list[RunningTrial]
    waiting: int  # grid points nobody holds yet (not complete, not running, not given up)
    failed_attempts: int  # failed attempts at points not complete yet (interruptions apart)
    last_failure: str | None
    best_value: float | None
    best_units: str | None
    mean_trial_seconds: float | None
    best_interval: tuple[float, float] | None = None  # the best's 95% corrected interval
    repeats: int = 1  # repeated CV: each point scored on this many k-fold splits
    folds: int | None = None  # k, the folds of one split (None: not known)
    metric: str = "accuracy"  # the task's score: accuracy, or R² for a regression
    data: str = ""  # what the data poses: its classes, or the regression's target; inputs
    interrupted: int = 0  # attempts given back by a stop (Ctrl-C, SIGTERM), points still open

    @property
    def failed_cell(self) -> str:
        """``2``, or ``2 (+16 given back)`` when interrupted attempts wait to be re-run."""
        given_back = f" (+{self.interrupted} given back)" if self.interrupted else ""
        return f"{self.failed_attempts}{given_back}"

    @property
    def grid_cell(self) -> str:
        """The grid's size, and its repeated CV where the study repeats it (``9 (2x3-fold
        CV)``); plain k-fold CV is every study's default and goes unsaid."""
        if self.repeats == 1:
            return str(self.grid_size)
        return f"{self.grid_size} ({self.repeats}x{self.folds or '?'}-fold CV)"

    @property
    def remaining(self) -> int:
        return self.grid_size - self.complete

    def eta_seconds(self) -> float | None:
        """Remaining points in waves of the live workers, at the mean trial time so far."""
        if self.remaining == 0:
            return 0.0
        if not self.running or self.mean_trial_seconds is None:
            return None
        waves = -(-self.remaining // len(self.running))
        return waves * self.mean_trial_seconds


def _point(definition: StudyDefinition, params: dict[str, Any]) -> str:
    """A trial's grid point as every message names it: widths, then the axes; a trial
    whose params are not its grid's (a damaged record) shows what it holds."""
    try:
        return definition.point_label(params)
    except KeyError:
        return " ".join(f"{name}={value}" for name, value in params.items())


def _epochs(config: StudyConfig, params: dict[str, Any]) -> int:
    """Epochs a running trial trains: its own where ``epochs`` is a grid axis."""
    try:
        return config.epochs_of(params)
    except KeyError:
        return config.epochs


def study_status(storage: optuna.storages.RDBStorage, study: optuna.Study) -> StudyStatus:
    """Where a study stands, read at a cost independent of how many trials it holds.

    Only states and grid ids of all trials, the RUNNING trials in full, the best trial
    and the durations of the latest completed ones are read, never every trial's curves.
    """
    config = StudyConfig.from_study(study)
    definition = config.definition
    study_id = storage.get_study_id_from_name(study.study_name)
    rows = TrialLedger(
        storage,
        study_id,
        [schema.GRID_ID, schema.FAIL_REASON, schema.INTERRUPTED, schema.RETRYABLE],
    ).rows()
    state = GridState.of(rows, definition.grid_size)
    running_trials = storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
    running = [
        RunningTrial(
            number=t.number,
            units=_point(definition, t.params),
            worker=f"{t.user_attrs.get(schema.HOST, '?')}/{t.user_attrs.get(schema.PID, '?')}",
            since=t.datetime_start,
            epoch=max(t.intermediate_values, default=None),
            epochs=_epochs(config, t.params),
            accuracy=t.intermediate_values[max(t.intermediate_values)]
            if t.intermediate_values
            else None,
        )
        for t in running_trials
    ]
    # Attempts at points since completed are history, not news: neither counted nor shown.
    open_points = [
        row
        for row in rows
        if row.state == TrialState.FAIL
        and row.system_attrs.get(schema.GRID_ID) not in state.complete
    ]
    failed = [row for row in open_points if not row.system_attrs.get(schema.INTERRUPTED)]
    best = storage.get_best_trial(study_id) if state.complete else None
    seconds = recent_durations(storage, study_id, limit=RECENT_TRIALS)
    return StudyStatus(
        name=study.study_name,
        grid_size=definition.grid_size,
        complete=len(state.complete),
        running=running,
        waiting=definition.grid_size
        - len(state.complete | state.running)
        - len(state.given_up(DEFAULT_MAX_ATTEMPTS)),
        failed_attempts=len(failed),
        interrupted=len(open_points) - len(failed),
        last_failure=failed[-1].system_attrs.get(schema.FAIL_REASON) if failed else None,
        best_value=best.value if best else None,
        best_units=_point(definition, best.params) if best else None,
        best_interval=_interval(best.user_attrs.get(schema.ACCURACY_INTERVAL)) if best else None,
        mean_trial_seconds=statistics.fmean(seconds) if seconds else None,
        repeats=config.repeats,
        folds=definition.protocol.folds,
        metric=config.task.metric_label,
        data=config.task.describe(),
    )


def _interval(recorded: object) -> tuple[float, float] | None:
    """The corrected interval a trial recorded, if it recorded one (newer tuner does)."""
    if isinstance(recorded, list) and len(recorded) == 2:
        return float(recorded[0]), float(recorded[1])
    return None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return str(datetime.timedelta(seconds=round(seconds)))


def render_status(console: Console, statuses: list[StudyStatus]) -> None:
    table = Table(title="tuner studies")
    for column in ("study", "grid", "complete", "running", "waiting", "failed", "best", "ETA"):
        # The best point's name (its widths, then every axis) folds rather than being cut.
        table.add_column(
            column,
            justify="left" if column in ("study", "best") else "right",
            overflow="fold" if column == "best" else "ellipsis",
        )
    for status in statuses:
        interval = (
            f" [{status.best_interval[0]:.4f}, {status.best_interval[1]:.4f}]"
            if status.best_interval
            else ""
        )
        best = (
            f"{status.best_value:.4f}{interval} ({status.best_units})"
            if status.best_value is not None
            else "-"
        )
        table.add_row(
            Text(shown_name(status.name)),
            status.grid_cell,
            str(status.complete),
            str(len(status.running)),
            str(status.waiting),
            status.failed_cell,
            best,
            _duration(status.eta_seconds()),
        )
    console.print(table)
    now = datetime.datetime.now()
    for status in statuses:
        if status.data:
            console.print(
                f"  {shown_name(status.name)}: {inert(status.data)}; best is CV {status.metric}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        for trial in status.running:
            since = (
                f"since {trial.since:%H:%M:%S} ({_duration((now - trial.since).total_seconds())})"
                if trial.since
                else ""
            )
            progress = (
                f"; epoch {trial.epoch}/{trial.epochs}, val {status.metric} {trial.accuracy:.4f}, "
                f"ETA {_duration(trial.eta_seconds(now))}"
                if trial.epoch is not None and trial.accuracy is not None
                else ""
            )
            console.print(
                f"  {shown_name(status.name)}: trial {trial.number} [{trial.units}] on "
                f"{inert(trial.worker)} "
                f"{since}{progress}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        if status.last_failure:
            console.print(
                f"  {shown_name(status.name)}: last failure: {inert(status.last_failure)}",
                highlight=False,
                markup=False,
            )
