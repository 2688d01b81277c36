"""The one place tuner reaches past Optuna's public API, each use pinned by a test.

Optuna exposes heartbeats (``record_heartbeat``) and a public reaper
(``optuna.storages.fail_stale_trials``), but that reaper finishes a trial before anyone
can record why it failed, and a FAIL trial's attributes can no longer be written. tuner
shows the reason in ``tuner status`` and the dashboard, so it asks the storage which
trials are stale and fails them itself. ``tests/storages/test_optuna_internals.py``
fails loudly if an Optuna release renames or changes what is used here.
"""

from __future__ import annotations

import optuna


def find_stale_trials(storage: optuna.storages.RDBStorage, study_id: int) -> list[int]:
    """RUNNING trials of the study whose last heartbeat is older than the grace period."""
    return storage._get_stale_trial_ids(study_id)
