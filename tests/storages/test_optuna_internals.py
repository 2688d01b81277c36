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
