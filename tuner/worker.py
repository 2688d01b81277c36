"""Workers: claim a grid point, evaluate it, record it; until every point is COMPLETE once.

Why not ``study.optimize`` with ``GridSampler``? Alone, it hands the same point to two
workers at the tail of the grid, never retries a FAIL, and leaves a killed worker's
trial RUNNING for ever (RELIABILITY.md, pitfalls 1 to 3). So the worker owns the
scheduling and GridSampler only turns a ``grid_id`` into parameters:

1. **Claim under a lock.** Inside :func:`tuner.storage.claim_lock` (a file lock beside
   an SQLite file, a PostgreSQL advisory lock per study) a worker fails trials whose
   heartbeat went stale, reads every trial, and picks the lowest grid id that is not
   COMPLETE, not RUNNING, and has failed fewer than ``max_attempts`` times. It creates
   that trial already RUNNING, with ``grid_id`` in its system attributes (exactly what
   GridSampler itself would write), and records its first heartbeat before letting go
   of the lock. Two workers therefore can never hold the same point, and no trial is
   created once every point is taken.
2. **Heartbeat.** While it trains, a thread records a heartbeat every
   ``heartbeat_interval`` seconds and survives storage errors. A SIGKILLed worker's
   trial goes stale after the grace period; the next claim marks it FAIL and its
   point becomes claimable again.
3. **Interrupts.** SIGINT and SIGTERM mark the current trial FAIL (reason recorded),
   which makes its point claimable, and end the worker with 130 / 143.
4. **Retries are bounded.** Retryable failures (stale, interrupted, storage errors)
   are retried up to ``max_attempts`` attempts per point; a diverged loss is not.
   Folds an interrupted attempt already finished are reused, not retrained.
5. **Done** when every point is COMPLETE: the worker exits; points that used up
   their attempts are named in the error.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner import objective
from tuner.data import Dataset
from tuner.definitions import StudyDefinition
from tuner.errors import TunerError, WorkerInterrupted
from tuner.folds import stratified_folds
from tuner.grid import (
    DEFAULT_MAX_ATTEMPTS,
    FAIL_REASON,
    GRID_ID,
    INTERRUPTED,
    RETRYABLE,
    GridState,
)
from tuner.progress import ProgressDisplay, format_units
from tuner.storage import claim_lock, with_retries
from tuner.study import StudyConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """A trial this worker owns, and folds an earlier attempt at its point already finished."""

    trial: optuna.Trial
    reuse: dict[int, objective.FoldResult]


@dataclass
class WorkerReport:
    """What one worker did, and where the grid stood when it stopped."""

    evaluated: int = 0
    state: GridState | None = None


class Heartbeat:
    """Records a trial's heartbeat on a thread; unlike Optuna's, one DB blip does not stop it."""

    def __init__(self, storage: optuna.storages.RDBStorage, trial_id: int, interval: float):
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="tuner-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception as exc:
                log.warning("heartbeat for trial %s failed, will retry: %s", self.trial_id, exc)


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """Turn SIGTERM into an exception (SIGINT already is one) while the worker runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise WorkerInterrupted(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class GridWorker:
    """Works one study's grid until every point has exactly one COMPLETE trial."""

    def __init__(
        self,
        storage: optuna.storages.RDBStorage,
        storage_url: str,
        study: optuna.Study,
        config: StudyConfig,
        dataset: Dataset,
        *,
        device: str = "CPU:0",
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        poll_seconds: float = 2.0,
        display: ProgressDisplay | None = None,
        trainer: str = "packed",
    ) -> None:
        self.storage = storage
        self.storage_url = storage_url
        self.study = study
        self.config = config
        self.dataset = dataset
        self.device = device
        self.max_attempts = max_attempts
        self.poll_seconds = poll_seconds
        self.display = display
        self.trainer = trainer
        self.definition = config.definition
        self.folds = stratified_folds(
            dataset.y_train, self.definition.protocol.folds, config.fold_seed
        )

    def run(self) -> WorkerReport:
        report = WorkerReport()
        with interrupts_raise():
            while True:
                claim, state = with_retries(self._claim, "claiming a grid point")
                report.state = state
                if claim is None:
                    if not state.running:
                        return report
                    time.sleep(self.poll_seconds)
                    continue
                if self._work(claim):
                    report.evaluated += 1

    def grid_state(self) -> GridState:
        trials = self.study.get_trials(deepcopy=False)
        return GridState.of(trials, self.definition.grid_size)

    def _claim(self) -> tuple[Claim | None, GridState]:
        with claim_lock(self.storage_url, self.study.study_name):
            self._reap_stale()
            trials = self.study.get_trials(deepcopy=False)
            state = GridState.of(trials, self.definition.grid_size)
            grid_id = state.next_point(self.max_attempts)
            if grid_id is None:
                return None, state
            # Through the study's own (caching) storage, which must see every trial it serves.
            trial_id = self.study._storage.create_new_trial(
                self.study._study_id, template_trial=_running_template(self.definition, grid_id)
            )
            self.storage.record_heartbeat(trial_id)
        reuse: dict[int, objective.FoldResult] = {}
        for earlier in trials:
            if earlier.system_attrs.get(GRID_ID) == grid_id and earlier.state == TrialState.FAIL:
                reuse.update(objective.completed_folds(earlier))
        state.running.add(grid_id)
        return Claim(optuna.Trial(self.study, trial_id), reuse), state

    def _reap_stale(self) -> None:
        """Fail RUNNING trials whose worker stopped sending heartbeats (killed, OOM, lost)."""
        storage = self.study._storage
        # Optuna's fail_stale_trials would work too, but it finishes the trial before we
        # could record why; the reason is what `tuner status` and the dashboard show.
        for trial_id in self.storage._get_stale_trial_ids(self.study._study_id):
            try:
                storage.set_trial_system_attr(trial_id, FAIL_REASON, "stale heartbeat")
                storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
            log.warning("trial id %s: its worker stopped sending heartbeats; re-queued", trial_id)

    def _work(self, claim: Claim) -> bool:
        """Evaluate a claimed trial; True when it ended COMPLETE."""
        trial = claim.trial
        units = tuple(
            int(trial.suggest_categorical(name, list(values)))
            for name, values in self.definition.grid.items()
        )
        label = format_units(self.definition.layer_names, units)
        if self.display:
            self.display.trial_started(trial.number, label)
        interval = self.storage.get_heartbeat_interval() or 10
        try:
            with Heartbeat(self.storage, trial._trial_id, interval):
                value = objective.evaluate(
                    trial,
                    self.definition,
                    self.dataset,
                    self.folds,
                    epochs=self.config.epochs,
                    base_seed=self.config.fold_seed,
                    device=self.device,
                    reuse=claim.reuse,
                    listener=self.display,
                    trainer=self.trainer,
                )
        except (KeyboardInterrupt, WorkerInterrupted) as exc:
            reason = "interrupted by SIGINT" if isinstance(exc, KeyboardInterrupt) else str(exc)
            self._fail(trial, f"{reason}; point will be re-run", retryable=True, interrupted=True)
            if self.display:
                self.display.trial_finished(trial.number, label, reason, completed=False)
            raise
        except objective.NonFiniteLossError as exc:
            self._fail(trial, str(exc), retryable=False)
            if self.display:
                self.display.trial_finished(trial.number, label, f"FAIL: {exc}", completed=False)
            return False
        except Exception as exc:
            log.exception("trial %s failed", trial.number)
            self._fail(trial, f"{type(exc).__name__}: {exc}", retryable=True)
            if self.display:
                self.display.trial_finished(trial.number, label, f"FAIL: {exc}", completed=False)
            return False
        try:
            with_retries(lambda: self.study.tell(trial, value), f"recording trial {trial.number}")
        except optuna.exceptions.UpdateFinishedTrialError:
            if not self._salvage(trial, value):
                return False
        if self.display:
            std = trial.user_attrs.get("accuracy_std", 0.0)
            seconds = trial.user_attrs.get("wall_seconds", 0.0)
            message = f"CV accuracy {value:.4f} ± {std:.4f} ({seconds:.1f} s)"
            self.display.trial_finished(trial.number, label, message, completed=True)
        return True

    def _salvage(self, trial: optuna.Trial, value: float) -> bool:
        """Keep a result whose trial was declared stale while it trained (a long DB outage).

        The finished work is recorded as a new COMPLETE trial, unless another worker has
        meanwhile claimed or completed the point: then keeping it would duplicate the point.
        """
        frozen = self.study._storage.get_trial(trial._trial_id)
        grid_id = frozen.system_attrs[GRID_ID]
        with claim_lock(self.storage_url, self.study.study_name):
            state = self.grid_state()
            if grid_id in state.complete or grid_id in state.running:
                log.warning(
                    "trial %s was re-queued while it ran; its result is dropped", trial.number
                )
                return False
            system_attrs = {key: frozen.system_attrs[key] for key in (GRID_ID, "search_space")}
            self.study.add_trial(
                optuna.trial.create_trial(
                    params=frozen.params,
                    distributions=frozen.distributions,
                    value=value,
                    user_attrs=frozen.user_attrs,
                    system_attrs=system_attrs,
                    intermediate_values=frozen.intermediate_values,
                )
            )
        log.warning("trial %s was declared stale while it ran; its result is kept", trial.number)
        return True

    def _fail(
        self, trial: optuna.Trial, reason: str, *, retryable: bool, interrupted: bool = False
    ) -> None:
        def record() -> None:
            storage = self.study._storage
            storage.set_trial_system_attr(trial._trial_id, FAIL_REASON, reason)
            storage.set_trial_system_attr(trial._trial_id, RETRYABLE, retryable)
            storage.set_trial_system_attr(trial._trial_id, INTERRUPTED, interrupted)
            self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)

        with_retries(record, f"marking trial {trial.number} failed")


def _running_template(definition: StudyDefinition, grid_id: int) -> FrozenTrial:
    search_space = {name: list(values) for name, values in definition.grid.items()}
    return FrozenTrial(
        number=-1,
        state=TrialState.RUNNING,
        value=None,
        datetime_start=datetime.datetime.now(),
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={},
        system_attrs={GRID_ID: grid_id, "search_space": search_space},
        intermediate_values={},
        trial_id=-1,
    )


def describe_given_up(study: optuna.Study, config: StudyConfig, grid_ids: list[int]) -> str:
    """Name the points that exhausted their attempts, with the last reason recorded."""
    lines = []
    for grid_id in grid_ids:
        attempts = [
            t for t in study.get_trials(deepcopy=False) if t.system_attrs.get(GRID_ID) == grid_id
        ]
        last = attempts[-1]
        units = (
            format_units(config.definition.layer_names, config.definition.units_of(last.params))
            if last.params
            else f"grid id {grid_id}"
        )
        reason = last.system_attrs.get(FAIL_REASON, "unknown")
        lines.append(f"{units} ({len(attempts)} attempts, last: {reason})")
    return "; ".join(lines)


def ensure_complete(
    study: optuna.Study, config: StudyConfig, report: WorkerReport, max_attempts: int
) -> None:
    """Raise a clear error naming the points the worker could not complete."""
    state = report.state
    if state is None:
        return
    given_up = state.given_up(max_attempts)
    if given_up:
        raise TunerError(
            f"study '{study.study_name}': {len(given_up)} grid point(s) failed for good: "
            f"{describe_given_up(study, config, given_up)}; fix the cause and relaunch "
            "with a higher --max-attempts"
        )
