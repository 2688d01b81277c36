"""Where grid points stand, as a pure function of trials."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from tuner.scheduling import GridState
from tuner.study import schema


def frozen(grid_id: int, state: TrialState, **attrs: object) -> optuna.trial.FrozenTrial:
    return optuna.trial.FrozenTrial(
        number=0,
        state=state,
        value=None,
        datetime_start=None,
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={},
        system_attrs={schema.GRID_ID: grid_id, **attrs},
        intermediate_values={},
        trial_id=0,
    )


def test_grid_state_counts() -> None:
    state = GridState.of(
        [
            frozen(0, TrialState.COMPLETE),
            frozen(1, TrialState.RUNNING),
            frozen(2, TrialState.FAIL),
            frozen(2, TrialState.FAIL, **{schema.INTERRUPTED: True}),
            frozen(3, TrialState.FAIL, **{schema.RETRYABLE: False}),
        ],
        grid_size=6,
    )
    assert state.next_points(max_attempts=3, count=1) == [2]
    assert state.next_points(max_attempts=3, count=5) == [2, 4, 5]
    assert state.failures[2] == 1
    assert state.given_up(max_attempts=3) == [3]
    assert state.given_up(max_attempts=1) == [2, 3]
    assert state.waiting(max_attempts=1) == [4, 5]


def test_lost_workers_count_against_their_own_budget() -> None:
    stale = {schema.FAIL_REASON: schema.STALE_REASON}
    trials = [frozen(0, TrialState.FAIL, **stale) for _ in range(3)]
    state = GridState.of([*trials, frozen(1, TrialState.FAIL)], grid_size=2, max_stale_attempts=4)
    assert state.stale[0] == 3 and state.failures[0] == 0
    assert state.given_up(max_attempts=1) == [1]
    assert GridState.of(trials, grid_size=2, max_stale_attempts=3).given_up(3) == [0]


def test_a_batch_takes_the_points_of_the_first_waiting_points_group() -> None:
    state = GridState(grid_size=6, complete={0})
    groups = ["a", "b", "a", "b", "b", "a"]
    assert state.next_points(3, 10, groups) == [1, 3, 4]
    assert state.next_points(3, 2, groups) == [1, 3]
    assert state.next_points(3, 10) == [1, 2, 3, 4, 5]
