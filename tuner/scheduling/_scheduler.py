"""The grid scheduler: decides which grid points run next and owns each trial's life cycle.

Why not ``study.optimize`` with ``GridSampler``? Alone, it hands the same point to two
workers at the tail of the grid, never retries a FAIL, and leaves a killed worker's
trial RUNNING for ever (docs/claims.md). So the scheduler decides, and GridSampler only
turns a ``grid_id`` into parameters. Its invariant: **every grid point ends with exactly
one COMPLETE trial**, however many workers run, on however many machines.

1. **Claim under a lock.** Inside :func:`tuner.storages.claim_lock` the scheduler fails
   trials whose heartbeat went stale, reads the trials, and picks the lowest grid ids
   that are not COMPLETE, not RUNNING, and not given up. It creates those trials already
   RUNNING with their parameters and ``grid_id`` set (exactly what GridSampler would
   record), and records their first heartbeat before letting go of the lock. Each
   point's holder is also recorded in a table whose key the database enforces
   (:func:`tuner.storages.take_point`): should the lock be lost mid-claim, a second
   claim of a point fails there and gives its trial back. Two workers can therefore
   never hold the same point.
2. **Heartbeat.** While points train, a thread records their heartbeats; a SIGKILLed
   worker's trials go stale after the grace period and the next claim fails them.
3. **Fail, retry, give up.** A failed trial records its reason; errors are retried up to
   ``max_attempts``, a diverged loss is not; a vanished worker (SIGKILL, OOM, preemption)
   has its own, larger budget ``max_stale_attempts``; interruptions are free.
   Folds an earlier attempt finished are handed to the next attempt for reuse.
4. **Complete, or salvage.** A result whose trial was declared stale while it trained
   (a long database outage) is kept as a new COMPLETE trial, unless someone else
   already holds or completed the point.

This module imports no deep-learning framework: it decides, :mod:`tuner.training`
trains, and :class:`~tuner.scheduling.TrialRunner` joins the two.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.errors import TunerError, WorkerInterrupted
from tuner.scheduling._curves import DEFAULT_CURVE_INTERVAL, CurveWriter
from tuner.scheduling._grid_state import DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_STALE_ATTEMPTS, GridState
from tuner.scheduling._heartbeat import Heartbeat
from tuner.storages import (
    DEFAULT_HEARTBEAT_SECONDS,
    TrialLedger,
    claim_lock,
    find_stale_trials,
    find_trials_without_heartbeat,
    take_point,
    with_retries,
)
from tuner.study import (
    PACKED_AXES,
    FoldResult,
    StudyDefinition,
    completed_folds,
    grid_params,
    running_trial_template,
    schema,
)

log = logging.getLogger(__name__)

DUPLICATE_CLAIM = "claimed twice: the database holds this point for another worker's trial"
"""Why a trial that lost its point to another worker's claim was given back."""


@dataclass(frozen=True)
class ClaimedTrial:
    """A RUNNING trial this worker holds: which grid point, and what it may reuse."""

    trial_id: int
    number: int
    grid_id: int
    params: dict[str, Any]
    units: tuple[int, ...]
    label: str
    reused_folds: dict[int, FoldResult] = field(default_factory=dict)


class TrialRecorder:
    """Writes one held trial's attributes and learning curve, riding out DB blips.

    A trial can be declared stale while it still trains (a pause longer than the grace
    period: a frozen VM, a long database outage, a starved machine). Its writes are then
    refused; the recorder keeps them, training goes on, and the scheduler salvages the
    result from what the recorder kept (nothing computed is lost).
    """

    def __init__(
        self, storage: optuna.storages.RDBStorage, claim: ClaimedTrial, curves: CurveWriter
    ) -> None:
        self.storage, self.claim, self.curves = storage, claim, curves
        self.recorded: dict[str, Any] = {}
        self.intermediate: dict[int, float] = {}
        self.reaped = False

    def set_user_attrs(self, **attrs: Any) -> None:
        """Record user attributes (JSON-serialisable) on the trial."""
        trial_id = self.claim.trial_id
        for key, value in attrs.items():
            self.recorded[key] = value
            self._write(
                lambda k=key, v=value: self.storage.set_trial_user_attr(trial_id, k, v),
                f"recording {key} on trial {self.claim.number}",
            )

    def record_epoch(self, epoch: int, value: float) -> None:
        """Record the point's learning curve at ``epoch`` (an intermediate value, step =
        epoch): written with the batch's other curves, at most every few seconds."""
        self.curves.add(self, epoch, value)

    def flush_curve(self) -> None:
        """Write what the batch's curves hold now (at the end of training)."""
        self.curves.flush()

    def mark_reaped(self) -> None:
        """The trial was declared stale: keep its writes for salvage from now on."""
        if not self.reaped:
            self.reaped = True
            log.warning(
                "trial %s was declared stale while it trained; training goes on and its "
                "result will be salvaged if nobody has retaken the point",
                self.claim.number,
            )

    def _write(self, action: Any, what: str) -> None:
        if self.reaped:
            return
        try:
            with_retries(action, what)
        except optuna.exceptions.UpdateFinishedTrialError:
            self.mark_reaped()


class GridScheduler:
    """The oracle of one study's grid: claims points and takes each trial to its end.

    Args:
        storage: The RDB storage the study lives in, opened by
            :func:`tuner.storages.open_storage` (heartbeats enabled).
        storage_url: Its URL, for the cross-process claim lock.
        study: The study, loaded with its sampler (:func:`tuner.study.load`).
        definition: The study's definition; gives the grid size and layer names.
        max_attempts: Failed attempts per point (raised errors) before it is given up.
        max_stale_attempts: Attempts whose worker vanished before the point is given up.
        expected_workers: Workers known to be starting on this study together (``tuner
            launch --workers N``, a fleet): fair shares count at least this many, so the
            first to claim does not take the whole grid before the others announce.
        curve_interval: Least seconds between two writes of a batch's learning curves.
    """

    def __init__(
        self,
        storage: optuna.storages.RDBStorage,
        storage_url: str,
        study: optuna.Study,
        definition: StudyDefinition,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_stale_attempts: int = DEFAULT_MAX_STALE_ATTEMPTS,
        expected_workers: int = 1,
        curve_interval: float = DEFAULT_CURVE_INTERVAL,
    ) -> None:
        if expected_workers < 1:
            raise ValueError(f"expected workers must be positive, got {expected_workers}")
        self.storage = storage
        self.storage_url = storage_url
        self.study = study
        self.definition = definition
        self.max_attempts = max_attempts
        self.max_stale_attempts = max_stale_attempts
        self.expected_workers = expected_workers
        self.curve_interval = curve_interval
        self.study_id = storage.get_study_id_from_name(study.study_name)
        self.worker_id = f"{socket.gethostname()}/{os.getpid()}"
        self._ledger = TrialLedger(
            storage,
            self.study_id,
            [schema.GRID_ID, schema.RETRYABLE, schema.INTERRUPTED, schema.FAIL_REASON],
        )
        # Each grid id's training group, when the grid has axes that split it (a batch
        # claim takes the points of one group: they train as one packed model).
        self._groups = (
            [definition.step_group(params) for params in grid_params(definition)]
            if set(definition.axes) - PACKED_AXES
            else None
        )

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between heartbeats of held trials, as the storage was opened with."""
        return self.storage.get_heartbeat_interval() or DEFAULT_HEARTBEAT_SECONDS

    def trials(self) -> list[FrozenTrial]:
        """Every trial of the study with all its attributes, oldest first (a full read)."""
        return self.study.get_trials(deepcopy=False)

    def grid_state(self) -> GridState:
        """Where each grid point stands now (a lean read: states and grid ids only)."""
        return GridState.of(self._ledger.rows(), self.definition.grid_size, self.max_stale_attempts)

    def announce(self) -> None:
        """Tell other workers of this study that this one is alive (for fair shares).

        Called on start and with every heartbeat; an announcement older than the grace
        period means the worker is gone.
        """
        self.storage.set_study_system_attr(
            self.study_id, schema.WORKER_PREFIX + self.worker_id, time.time()
        )

    def retire(self) -> None:
        """Withdraw this worker's announcement (it takes no more points)."""
        self.storage.set_study_system_attr(self.study_id, schema.WORKER_PREFIX + self.worker_id, 0)

    def live_workers(self) -> int:
        """Workers of this study that announced themselves within the grace period."""
        grace = self.storage.grace_period or 2 * self.heartbeat_interval
        fresh_after = time.time() - grace
        attrs = self.storage.get_study_system_attrs(self.study_id)
        return sum(
            1
            for key, value in attrs.items()
            if key.startswith(schema.WORKER_PREFIX) and float(value) > fresh_after
        )

    def claim(self, count: int = 1) -> tuple[list[ClaimedTrial], GridState]:
        """Claim up to ``count`` waiting grid points as RUNNING trials held by this process.

        With other live (or expected) workers, a claim takes at most a fair share of what
        is waiting (waiting points / workers, rounded up), so no worker holds the whole
        grid while others idle. Returns the claimed trials (none when nothing is waiting) and
        the grid's state just after the claim. Safe against every other worker.
        """
        if count < 1:
            raise ValueError(f"claim count must be positive, got {count}")
        self.announce()
        with claim_lock(self.storage_url, self.study.study_name):
            self.reap_stale()
            state = self.grid_state()
            if count > 1:
                waiting = len(state.waiting(self.max_attempts))
                workers = max(self.expected_workers, self.live_workers())
                count = max(1, min(count, math.ceil(waiting / workers)))
            claims = []
            created: list[int] = []
            try:
                for grid_id in state.next_points(self.max_attempts, count, self._groups):
                    template = running_trial_template(self.study, self.definition, grid_id)
                    trial_id = self.storage.create_new_trial(self.study_id, template_trial=template)
                    created.append(trial_id)
                    try:
                        self.storage.record_heartbeat(trial_id)
                    except Exception:
                        # Without a heartbeat Optuna would never call it stale; free it now
                        # (if the database lets us; otherwise the orphan reaper will).
                        self._give_back_unstarted(
                            trial_id, "claim failed before its first heartbeat"
                        )
                        raise
                    if not take_point(self.storage, self.study_id, grid_id, trial_id):
                        # Only if the lock was lost mid-claim (its connection dropped):
                        # another worker holds the point, and the database says so.
                        self._give_back_unstarted(trial_id, DUPLICATE_CLAIM)
                        log.warning("grid point %s is held by another worker; skipped", grid_id)
                        continue
                    claims.append(self._claimed(trial_id, template))
                    state.running.add(grid_id)
            except (KeyboardInterrupt, WorkerInterrupted):
                # Nobody will train what this claim created (a batch claim creates its
                # trials one by one): give it back now, uncharged, rather than leave it
                # RUNNING to go stale and cost each point an attempt.
                for trial_id in created:
                    self._give_back_unstarted(trial_id, "interrupted while claiming")
                raise
        return claims, state

    def _give_back_unstarted(self, trial_id: int, reason: str) -> None:
        try:
            self.storage.set_trial_system_attr(trial_id, schema.INTERRUPTED, True)
            self.storage.set_trial_system_attr(trial_id, schema.FAIL_REASON, reason)
            self.storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except Exception as exc:
            log.warning("could not give back trial id %s after a failed claim: %s", trial_id, exc)

    def _claimed(self, trial_id: int, template: FrozenTrial) -> ClaimedTrial:
        grid_id = template.system_attrs[schema.GRID_ID]
        reuse: dict[int, FoldResult] = {}
        for row in self._ledger.rows():
            if row.system_attrs.get(schema.GRID_ID) == grid_id and row.state == TrialState.FAIL:
                reuse.update(completed_folds(self.storage.get_trial(row.trial_id)))
        units = self.definition.units_of(template.params)
        return ClaimedTrial(
            trial_id=trial_id,
            number=self.storage.get_trial_number_from_id(trial_id),
            grid_id=grid_id,
            params=dict(template.params),
            units=units,
            label=self.definition.point_label(template.params),
            reused_folds=reuse,
        )

    def reap_stale(self) -> list[int]:
        """Fail RUNNING trials whose worker stopped sending heartbeats; their ids.

        Call it under the claim lock (``claim`` does), so that a point is re-queued and
        re-claimed in one step.
        """
        reaped = []
        grace = self.storage.grace_period or 2 * self.heartbeat_interval
        # A trial that never beat is judged by its start time, written by its worker's
        # clock: a generous margin keeps clock skew between machines from reaping it early.
        orphans = find_trials_without_heartbeat(
            self.storage, self.study_id, older_than=max(2 * grace, 60.0)
        )
        for trial_id in sorted({*find_stale_trials(self.storage, self.study_id), *orphans}):
            try:
                self.storage.set_trial_system_attr(
                    trial_id, schema.FAIL_REASON, schema.STALE_REASON
                )
                self.storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
            log.warning("trial id %s: its worker stopped sending heartbeats; re-queued", trial_id)
            reaped.append(trial_id)
        return reaped

    def heartbeat(self, claims: list[ClaimedTrial]) -> Heartbeat:
        """A context manager that keeps the claimed trials' heartbeats going."""
        return Heartbeat(
            self.storage,
            [c.trial_id for c in claims],
            self.heartbeat_interval,
            on_beat=self.announce,
        )

    def recorders(self, claims: list[ClaimedTrial]) -> list[TrialRecorder]:
        """Where the evaluation of claimed trials records what they measure; their
        learning curves are written together (one transaction), throttled."""
        curves = CurveWriter(self.storage, self.curve_interval)
        return [TrialRecorder(self.storage, claim, curves) for claim in claims]

    def complete(
        self, claim: ClaimedTrial, value: float, recorder: TrialRecorder | None = None
    ) -> bool:
        """Record the trial's value and mark it COMPLETE; False when the result was dropped.

        A trial declared stale while it trained is salvaged (see the module docstring),
        with what its ``recorder`` kept when the storage refused its writes.
        """
        try:
            with_retries(
                lambda: self.storage.set_trial_state_values(
                    claim.trial_id, state=TrialState.COMPLETE, values=[value]
                ),
                f"recording trial {claim.number}",
            )
        except optuna.exceptions.UpdateFinishedTrialError:
            return self._salvage(claim, value, recorder)
        return True

    def _salvage(self, claim: ClaimedTrial, value: float, recorder: TrialRecorder | None) -> bool:
        frozen = self.storage.get_trial(claim.trial_id)
        if frozen.state == TrialState.COMPLETE:
            # A retried write whose first attempt had landed after all.
            return True
        with claim_lock(self.storage_url, self.study.study_name):
            state = self.grid_state()
            if claim.grid_id in state.complete or claim.grid_id in state.running:
                log.warning(
                    "trial %s was re-queued while it ran and its point is taken; "
                    "its result is dropped",
                    claim.number,
                )
                return False
            system_attrs = {
                key: frozen.system_attrs[key] for key in (schema.GRID_ID, schema.SEARCH_SPACE)
            }
            salvaged = self.storage.create_new_trial(
                self.study_id,
                template_trial=optuna.trial.create_trial(
                    params=frozen.params,
                    distributions=frozen.distributions,
                    value=value,
                    user_attrs={**frozen.user_attrs, **(recorder.recorded if recorder else {})},
                    system_attrs=system_attrs,
                    intermediate_values={
                        **frozen.intermediate_values,
                        **(recorder.intermediate if recorder else {}),
                    },
                ),
            )
            take_point(self.storage, self.study_id, claim.grid_id, salvaged)
        log.warning("trial %s was declared stale while it ran; its result is kept", claim.number)
        return True

    def fail(
        self, claim: ClaimedTrial, reason: str, *, retryable: bool, interrupted: bool = False
    ) -> None:
        """Mark a held trial FAIL with its reason; its point becomes claimable again."""

        def record() -> None:
            try:
                self.storage.set_trial_system_attr(claim.trial_id, schema.FAIL_REASON, reason)
                self.storage.set_trial_system_attr(claim.trial_id, schema.RETRYABLE, retryable)
                self.storage.set_trial_system_attr(claim.trial_id, schema.INTERRUPTED, interrupted)
                self.storage.set_trial_state_values(claim.trial_id, state=TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                # Already failed as stale by another worker: the point is free either way.
                pass

        with_retries(record, f"marking trial {claim.number} failed")

    def release(self, claims: list[ClaimedTrial], reason: str) -> None:
        """Give held trials back after an interruption: FAIL, not charged an attempt."""
        for claim in claims:
            self.fail(claim, f"{reason}; point will be re-run", retryable=True, interrupted=True)

    def ensure_complete(self, state: GridState) -> None:
        """Raise a clear error naming the points that failed for good, if any."""
        given_up = state.given_up(self.max_attempts)
        if given_up:
            raise TunerError(
                f"study '{self.study.study_name}': {len(given_up)} grid point(s) failed for "
                f"good: {self.describe_given_up(given_up)}; fix the cause and relaunch "
                "with a higher --max-attempts (errors) or --max-stale-attempts (workers lost)"
            )

    def describe_given_up(self, grid_ids: list[int]) -> str:
        """Name the points that exhausted their attempts, with the last reason recorded."""
        trials = self.trials()
        lines = []
        for grid_id in grid_ids:
            attempts = [t for t in trials if t.system_attrs.get(schema.GRID_ID) == grid_id]
            last = attempts[-1]
            units = (
                self.definition.point_label(last.params) if last.params else f"grid id {grid_id}"
            )
            reason = last.system_attrs.get(schema.FAIL_REASON, "unknown")
            lines.append(f"{units} ({len(attempts)} attempts, last: {reason})")
        return "; ".join(lines)
