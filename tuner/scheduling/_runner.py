"""The runner: evaluates the trials the scheduler hands it, and tells it how each ended.

It decides nothing (KerasTuner's split of oracle and tuner): which points run, when a
point is given up and what a result means for the grid all belong to
:class:`~tuner.scheduling.GridScheduler`. What evaluating means belongs to the
``evaluate`` callable, so this module, like the scheduler, imports no deep-learning
framework. A trial that raises fails alone; an interruption gives back every trial the
runner still holds, then propagates.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from tuner.errors import PermanentTrialError, WorkerInterrupted
from tuner.scheduling._grid_state import GridState
from tuner.scheduling._scheduler import ClaimedTrial, GridScheduler, TrialRecorder
from tuner.scheduling._signals import interrupt_exception, interrupt_requested, interrupts_raise
from tuner.storages import with_retries
from tuner.study import schema

log = logging.getLogger(__name__)

Evaluate = Callable[[ClaimedTrial, TrialRecorder], float]
"""Trains one claimed grid point, records what it measures, returns the trial's value."""
EvaluateBatch = Callable[[list[ClaimedTrial], list[TrialRecorder]], list[float | Exception]]
"""Trains several claimed points together; per point its value, or the error it alone hit."""


class TrialListener(Protocol):
    """Told when a trial starts and ends; the progress display implements it."""

    def trial_started(self, number: int, label: str) -> None: ...

    def trial_finished(self, number: int, label: str, message: str, completed: bool) -> None: ...

    def batch_started(self, numbers: list[int], labels: list[str]) -> None: ...

    def trials_given_back(self, numbers: list[int], reason: str) -> None: ...

    def study_complete(self, points: int) -> None: ...


@dataclass
class RunSummary:
    """What one runner did, and where the grid stood when it stopped."""

    evaluated: int = 0
    state: GridState | None = None


class TrialRunner:
    """Runs one study's grid points until the scheduler has none left for anyone.

    Args:
        scheduler: Decides what runs and records how it ended.
        evaluate: Trains one claimed point and returns its value.
        evaluate_batch: Trains several claimed points together (grid packing); used for
            every claim of more than one point when given.
        claim_size: Most grid points claimed at once (all held, heartbeating, until run);
            the scheduler gives each worker a fair share of what is left.
        poll_seconds: Wait between claims while other workers still hold points.
        listener: Told about each trial's start and end.
    """

    def __init__(
        self,
        scheduler: GridScheduler,
        evaluate: Evaluate,
        *,
        evaluate_batch: EvaluateBatch | None = None,
        claim_size: int = 1,
        poll_seconds: float = 2.0,
        listener: TrialListener | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.evaluate = evaluate
        self.evaluate_batch = evaluate_batch
        self.claim_size = claim_size
        self.poll_seconds = poll_seconds
        self.listener = listener

    def run(self) -> RunSummary:
        """Claim and evaluate until every point is complete, given up, or held elsewhere."""
        report = RunSummary()
        with interrupts_raise(), self._announced():
            while True:
                self._raise_if_interrupted()  # asked to stop; its exception was lost
                claims, state = with_retries(
                    lambda: self.scheduler.claim(self.claim_size), "claiming grid points"
                )
                report.state = state
                if self.listener:
                    # Every worker's progress, as the claim just read it (no extra read).
                    self.listener.study_complete(len(state.complete))
                if not claims:
                    if not state.running:
                        return report
                    time.sleep(self.poll_seconds)
                    continue
                report.evaluated += self._run_batch(claims)

    @contextlib.contextmanager
    def _announced(self) -> Iterator[None]:
        # Other workers size their fair shares by who is alive; say so, and say goodbye.
        with_retries(self.scheduler.announce, "announcing this worker")
        try:
            yield
        finally:
            try:
                self.scheduler.retire()
            except Exception as exc:
                log.warning("could not withdraw this worker's announcement: %s", exc)

    def _run_batch(self, claims: list[ClaimedTrial]) -> int:
        completed = 0
        pending = list(claims)
        with self.scheduler.heartbeat(claims) as heartbeat:
            try:
                if self.evaluate_batch is not None and len(claims) > 1:
                    completed = self._run_together(claims)
                    pending.clear()
                while pending:
                    claim = pending[0]
                    # A stop whose exception was lost mid-trial: honour it here.
                    self._raise_if_interrupted()
                    if self._run_one(claim):
                        completed += 1
                    heartbeat.release(claim.trial_id)
                    pending.pop(0)
            except (KeyboardInterrupt, WorkerInterrupted) as exc:
                reason = "interrupted by SIGINT" if isinstance(exc, KeyboardInterrupt) else str(exc)
                self.scheduler.release(pending, reason)
                if self.listener:
                    self.listener.trials_given_back([claim.number for claim in pending], reason)
                # The command's last line counts them (tuner.cli).
                exc.given_back = len(pending)  # type: ignore[union-attr]
                raise
        return completed

    def _run_together(self, claims: list[ClaimedTrial]) -> int:
        """Evaluate a batch in one go; each point is then told (or failed) on its own."""
        assert self.evaluate_batch is not None
        if self.listener:
            self.listener.batch_started([c.number for c in claims], [c.label for c in claims])
        recorders = self.scheduler.recorders(claims)
        try:
            outcomes = self.evaluate_batch(claims, recorders)
        except Exception as exc:
            self._raise_if_interrupted(exc)
            log.exception("trials %s failed together", [c.number for c in claims])
            outcomes = [exc] * len(claims)
        return sum(
            self._tell(claim, recorder, outcome)
            for claim, recorder, outcome in zip(claims, recorders, outcomes, strict=True)
        )

    def _run_one(self, claim: ClaimedTrial) -> bool:
        """Evaluate one claimed trial; True when it ended COMPLETE."""
        if self.listener:
            self.listener.trial_started(claim.number, claim.label)
        (recorder,) = self.scheduler.recorders([claim])
        try:
            outcome: float | Exception = self.evaluate(claim, recorder)
        except Exception as exc:
            self._raise_if_interrupted(exc)
            if not isinstance(exc, PermanentTrialError):
                log.exception("trial %s failed", claim.number)
            outcome = exc
        return self._tell(claim, recorder, outcome)

    @staticmethod
    def _raise_if_interrupted(error: Exception | None = None) -> None:
        """Honour a stop request whose exception was lost, or that the code it hit turned
        into ``error``."""
        signum = interrupt_requested()
        if signum is not None:
            raise interrupt_exception(signum) from error

    def _tell(
        self, claim: ClaimedTrial, recorder: TrialRecorder, outcome: float | Exception
    ) -> bool:
        """Record how one trial ended; True when it ended COMPLETE."""
        if isinstance(outcome, PermanentTrialError):
            self.scheduler.fail(claim, str(outcome), retryable=False)
            self._finished(claim, f"FAIL: {outcome}", completed=False)
            return False
        if isinstance(outcome, Exception):
            self.scheduler.fail(claim, f"{type(outcome).__name__}: {outcome}", retryable=True)
            self._finished(claim, f"FAIL: {outcome}", completed=False)
            return False
        value = outcome
        if not self.scheduler.complete(claim, value, recorder):
            self._finished(claim, "result dropped: the point was re-run elsewhere", False)
            return False
        std = recorder.recorded.get(schema.ACCURACY_STD, 0.0)
        seconds = recorder.recorded.get(schema.WALL_SECONDS, 0.0)
        metric = self.scheduler.definition.task.metric_label
        message = f"CV {metric} {value:.4f} ± {std:.4f} ({seconds:.1f} s)"
        self._finished(claim, message, completed=True)
        return True

    def _finished(self, claim: ClaimedTrial, message: str, completed: bool) -> None:
        if self.listener:
            self.listener.trial_finished(claim.number, claim.label, message, completed)
