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
