"""The runner: evaluates the trials the scheduler hands it, and tells it how each ended.

It decides nothing (KerasTuner's split of oracle and tuner): which points run, when a
point is given up and what a result means for the grid all belong to
:class:`~tuner.scheduling.GridScheduler`. What evaluating means belongs to the
``evaluate`` callable, so this module, like the scheduler, imports no deep-learning
framework. A trial that raises fails alone; an interruption gives back every trial the
runner still holds, then propagates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tuner.errors import PermanentTrialError, WorkerInterrupted
from tuner.scheduling._grid_state import GridState
from tuner.scheduling._scheduler import ClaimedTrial, GridScheduler, TrialRecorder
from tuner.scheduling._signals import interrupts_raise
from tuner.storages import with_retries
from tuner.study import schema

log = logging.getLogger(__name__)

Evaluate = Callable[[ClaimedTrial, TrialRecorder], float]
"""Trains one claimed grid point, records what it measures, returns the trial's value."""


class TrialListener(Protocol):
    """Told when a trial starts and ends; the progress display implements it."""

    def trial_started(self, number: int, label: str) -> None: ...

    def trial_finished(self, number: int, label: str, message: str, completed: bool) -> None: ...


@dataclass
class RunReport:
    """What one runner did, and where the grid stood when it stopped."""

    evaluated: int = 0
    state: GridState | None = None


class TrialRunner:
    """Runs one study's grid points until the scheduler has none left for anyone.

    Args:
        scheduler: Decides what runs and records how it ended.
        evaluate: Trains one claimed point and returns its value.
        claim_size: Grid points claimed at once (all are held, heartbeating, until run).
        poll_seconds: Wait between claims while other workers still hold points.
        listener: Told about each trial's start and end.
    """

    def __init__(
        self,
        scheduler: GridScheduler,
        evaluate: Evaluate,
        *,
        claim_size: int = 1,
        poll_seconds: float = 2.0,
        listener: TrialListener | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.evaluate = evaluate
        self.claim_size = claim_size
        self.poll_seconds = poll_seconds
        self.listener = listener

    def run(self) -> RunReport:
        """Claim and evaluate until every point is complete, given up, or held elsewhere."""
        report = RunReport()
        with interrupts_raise():
            while True:
                claims, state = with_retries(
                    lambda: self.scheduler.claim(self.claim_size), "claiming grid points"
                )
                report.state = state
                if not claims:
                    if not state.running:
                        return report
                    time.sleep(self.poll_seconds)
                    continue
                report.evaluated += self._run_batch(claims)

    def _run_batch(self, claims: list[ClaimedTrial]) -> int:
        completed = 0
        pending = list(claims)
        with self.scheduler.heartbeat(claims) as heartbeat:
            try:
                while pending:
                    claim = pending[0]
                    if self._run_one(claim):
                        completed += 1
                    heartbeat.release(claim.trial_id)
                    pending.pop(0)
            except (KeyboardInterrupt, WorkerInterrupted) as exc:
                reason = "interrupted by SIGINT" if isinstance(exc, KeyboardInterrupt) else str(exc)
                self.scheduler.release(pending, reason)
                if self.listener:
                    for claim in pending:
                        self.listener.trial_finished(claim.number, claim.label, reason, False)
                raise
        return completed

    def _run_one(self, claim: ClaimedTrial) -> bool:
        """Evaluate one claimed trial; True when it ended COMPLETE."""
        if self.listener:
            self.listener.trial_started(claim.number, claim.label)
        recorder = self.scheduler.recorder(claim)
        try:
            value = self.evaluate(claim, recorder)
        except PermanentTrialError as exc:
            self.scheduler.fail(claim, str(exc), retryable=False)
            self._finished(claim, f"FAIL: {exc}", completed=False)
            return False
        except Exception as exc:
            log.exception("trial %s failed", claim.number)
            self.scheduler.fail(claim, f"{type(exc).__name__}: {exc}", retryable=True)
            self._finished(claim, f"FAIL: {exc}", completed=False)
            return False
        if not self.scheduler.complete(claim, value, recorder):
            self._finished(claim, "result dropped: the point was re-run elsewhere", False)
            return False
        std = recorder.recorded.get(schema.ACCURACY_STD, 0.0)
        seconds = recorder.recorded.get(schema.WALL_SECONDS, 0.0)
        message = f"CV accuracy {value:.4f} ± {std:.4f} ({seconds:.1f} s)"
        self._finished(claim, message, completed=True)
        return True

    def _finished(self, claim: ClaimedTrial, message: str, completed: bool) -> None:
        if self.listener:
            self.listener.trial_finished(claim.number, claim.label, message, completed)
