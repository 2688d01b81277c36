"""Where each grid point of a study stands, read from its trials.

A pure function of the trials, so the scheduler, ``tuner status`` and the report agree
on what is complete, running, waiting and given up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from optuna.trial import TrialState

from tuner.study.schema import FAIL_REASON, GRID_ID, INTERRUPTED, RETRYABLE, STALE_REASON

DEFAULT_MAX_ATTEMPTS = 3
"""Failed attempts that raised (interruptions not counted) before a point is given up."""
DEFAULT_MAX_STALE_ATTEMPTS = 6
"""Attempts whose worker vanished (SIGKILL, OOM, a lost or preempted machine) before a
point is given up: more than for errors, because preemption is not the point's fault,
but bounded, because a point that kills its worker every time (OOM) would loop for ever."""


class TrialLike(Protocol):
    """What a grid state needs of a trial: a FrozenTrial or a storage row."""

    @property
    def state(self) -> TrialState: ...

    @property
    def system_attrs(self) -> Mapping[str, Any]: ...


@dataclass
class GridState:
    """Where each grid point of a study stands, from its trials."""

    grid_size: int
    complete: set[int] = field(default_factory=set)
    running: set[int] = field(default_factory=set)
    failures: Counter[int] = field(default_factory=Counter)
    stale: Counter[int] = field(default_factory=Counter)
    permanent: set[int] = field(default_factory=set)
    max_stale_attempts: int = DEFAULT_MAX_STALE_ATTEMPTS

    @classmethod
    def of(
        cls,
        trials: Iterable[TrialLike],
        grid_size: int,
        max_stale_attempts: int = DEFAULT_MAX_STALE_ATTEMPTS,
    ) -> GridState:
        """The state of a grid of ``grid_size`` points, from a study's trials."""
        state = cls(grid_size, max_stale_attempts=max_stale_attempts)
        for trial in trials:
            grid_id = trial.system_attrs.get(GRID_ID)
            if grid_id is None:
                continue
            if trial.state == TrialState.COMPLETE:
                state.complete.add(grid_id)
            elif trial.state in (TrialState.RUNNING, TrialState.WAITING):
                state.running.add(grid_id)
            elif trial.state == TrialState.FAIL and not trial.system_attrs.get(INTERRUPTED):
                # A deliberate stop (Ctrl-C, docker stop) is not the point's fault.
                if trial.system_attrs.get(FAIL_REASON) == STALE_REASON:
                    state.stale[grid_id] += 1
                    continue
                state.failures[grid_id] += 1
                if trial.system_attrs.get(RETRYABLE) is False:
                    state.permanent.add(grid_id)
        return state

    def given_up(self, max_attempts: int) -> list[int]:
        """Points that will not be tried again: they failed deterministically or too often."""
        return sorted(
            g
            for g in range(self.grid_size)
            if g not in self.complete
            and g not in self.running
            and (
                g in self.permanent
                or self.failures[g] >= max_attempts
                or self.stale[g] >= self.max_stale_attempts
            )
        )

    def waiting(self, max_attempts: int) -> list[int]:
        """Points nobody holds that will still be tried, lowest grid id first."""
        blocked = self.complete | self.running | set(self.given_up(max_attempts))
        return [g for g in range(self.grid_size) if g not in blocked]

    def next_points(
        self, max_attempts: int, count: int, groups: Sequence[Hashable] | None = None
    ) -> list[int]:
        """Up to ``count`` points to claim next, lowest grid id first.

        With ``groups`` (each grid id's training group: points that can train in one
        packed model), the points are all of the first waiting point's group.
        """
        waiting = self.waiting(max_attempts)
        if groups is not None and waiting:
            first = groups[waiting[0]]
            waiting = [g for g in waiting if groups[g] == first]
        return waiting[:count]
