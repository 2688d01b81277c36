"""Pins what tuner relies on past Optuna's public API (tuner/storages/_optuna_internals.py).

If an Optuna release renames or changes any of it, these fail first, naming the call,
instead of workers silently never reaping a dead worker's trial.
"""

from __future__ import annotations

import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from tuner.storages import open_storage
from tuner.storages._optuna_internals import find_stale_trials


def test_rdb_storage_still_has_the_private_stale_trial_query() -> None:
    assert callable(getattr(optuna.storages.RDBStorage, "_get_stale_trial_ids", None)), (
        "Optuna removed RDBStorage._get_stale_trial_ids: update tuner/storages/_optuna_internals.py"
    )


def test_stale_trials_are_running_trials_past_the_grace_period(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'i.db'}", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage, study_name="s")
    study_id = storage.get_study_id_from_name("s")
    dead = storage.create_new_trial(study_id)
    alive = storage.create_new_trial(study_id)
    finished = storage.create_new_trial(study_id)
    for trial_id in (dead, alive, finished):
        storage.record_heartbeat(trial_id)
    storage.set_trial_state_values(finished, state=TrialState.COMPLETE, values=[1.0])
    time.sleep(2.5)
    storage.record_heartbeat(alive)
    assert find_stale_trials(storage, study_id) == [dead]
    assert study.trials[dead].state == TrialState.RUNNING  # reporting it changes nothing


def test_many_trials_intermediate_values_are_one_write_that_skips_finished_trials(
    tmp_path: Path,
) -> None:
    from tuner.storages import set_intermediate_values

    storage = open_storage(f"sqlite:///{tmp_path / 'i.db'}")
    study = optuna.create_study(storage=storage, study_name="s")
    study_id = storage.get_study_id_from_name("s")
    running = [storage.create_new_trial(study_id) for _ in range(3)]
    reaped = storage.create_new_trial(study_id)
    storage.set_trial_state_values(reaped, state=TrialState.FAIL)
    values = [(t, step, t + step / 10) for t in [*running, reaped] for step in (1, 2)]
    assert set_intermediate_values(storage, values) == {reaped}
    set_intermediate_values(storage, [(running[0], 2, 0.25)])  # a step written again
    trials = {t._trial_id: t for t in study.get_trials()}
    assert trials[running[0]].intermediate_values == {1: running[0] + 0.1, 2: 0.25}
    assert trials[running[1]].intermediate_values == {1: running[1] + 0.1, 2: running[1] + 0.2}
    assert trials[reaped].intermediate_values == {}
