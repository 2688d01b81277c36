"""The one place tuner reaches past Optuna's public API, each use pinned by a test.

Three needs have no public answer:

* **Which trials are stale, with a reason recorded.** Optuna's public reaper
  (``optuna.storages.fail_stale_trials``) finishes a trial before anyone can record why
  it failed, and a FAIL trial's attributes can no longer be written; tuner shows the
  reason in ``tuner status`` and the dashboard. It also never reaps a RUNNING trial
  that has no heartbeat at all (a claim whose first heartbeat write failed).
* **What a claim needs, at a cost independent of the study's size.** The public reads
  load every trial with all its attributes (tuner's fold curves make that 1.2 s at
  1,000 trials and 6 s at 5,000); a claim needs only each trial's state and three small
  system attributes, and only for trials it has not seen finished.

* **Many trials' learning curves in one transaction.** A grid batch writes each running
  point's per-epoch value; one public call (one transaction) per value would put a
  16-worker fleet's many points on the database each epoch. Optuna's own writer of one
  value runs once per value inside a single session and commit.

The reads use Optuna's RDB tables (``trials``, ``trial_system_attributes``,
``trial_heartbeats``) through the storage's public ``engine``; the one write goes
through Optuna's own per-value writer and session, never raw SQL.
``tests/storages/test_optuna_internals.py`` fails loudly if an Optuna release changes
any of it.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import TrialState

_ROWS = sqlalchemy.text(
    """
    SELECT t.trial_id, t.number, t.state, a.key, a.value_json
    FROM trials t
    LEFT JOIN trial_system_attributes a ON a.trial_id = t.trial_id AND a.key IN :keys
    WHERE t.study_id = :study_id AND (t.trial_id > :after OR t.trial_id IN :unsettled)
    """
).bindparams(
    sqlalchemy.bindparam("keys", expanding=True),
    sqlalchemy.bindparam("unsettled", expanding=True),
)

_NO_HEARTBEAT = sqlalchemy.text(
    """
    SELECT t.trial_id
    FROM trials t
    LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id
    WHERE t.study_id = :study_id AND t.state = 'RUNNING' AND h.trial_id IS NULL
      AND t.datetime_start < :cutoff
    """
).bindparams(sqlalchemy.bindparam("cutoff", type_=sqlalchemy.DateTime))


_DURATIONS = sqlalchemy.text(
    """
    SELECT datetime_start, datetime_complete
    FROM trials
    WHERE study_id = :study_id AND state = 'COMPLETE'
      AND datetime_start IS NOT NULL AND datetime_complete IS NOT NULL
    ORDER BY trial_id DESC
    LIMIT :limit
    """
).columns(datetime_start=sqlalchemy.DateTime, datetime_complete=sqlalchemy.DateTime)


_STATES = sqlalchemy.text("SELECT trial_id, state FROM trials WHERE trial_id IN :ids").bindparams(
    sqlalchemy.bindparam("ids", expanding=True)
)


def set_intermediate_values(
    storage: optuna.storages.RDBStorage, values: Sequence[tuple[int, int, float]]
) -> set[int]:
    """Write ``(trial_id, step, value)`` intermediate values in one transaction.

    Values of trials that are no longer RUNNING (reaped as stale meanwhile) are skipped;
    their ids are returned. A trial finished between the check and the write fails the
    transaction with Optuna's ``UpdateFinishedTrialError``, as its public call would.
    """
    from optuna.storages._rdb.storage import _create_scoped_session

    ids = sorted({trial_id for trial_id, _, _ in values})
    if not ids:
        return set()
    with storage.engine.connect() as connection:
        states: dict[int, Any] = dict(connection.execute(_STATES, {"ids": ids}).all())
    finished = {t for t in ids if t not in states or _state(states[t]) != TrialState.RUNNING}
    with _create_scoped_session(storage.scoped_session, True) as session:
        for trial_id, step, value in values:
            if trial_id not in finished:
                storage._set_trial_intermediate_value_without_commit(session, trial_id, step, value)
    return finished


def recent_durations(storage: optuna.storages.RDBStorage, study_id: int, limit: int) -> list[float]:
    """Seconds taken by the latest ``limit`` COMPLETE trials, newest first."""
    with storage.engine.connect() as connection:
        rows = connection.execute(_DURATIONS, {"study_id": study_id, "limit": limit})
        return [(complete - start).total_seconds() for start, complete in rows]


def find_stale_trials(storage: optuna.storages.RDBStorage, study_id: int) -> list[int]:
    """RUNNING trials of the study whose last heartbeat is older than the grace period."""
    return storage._get_stale_trial_ids(study_id)


def find_trials_without_heartbeat(
    storage: optuna.storages.RDBStorage, study_id: int, older_than: float
) -> list[int]:
    """RUNNING trials that never recorded a heartbeat and started ``older_than`` s ago.

    Optuna's stale check skips them, so a claim whose first heartbeat write failed would
    hold its grid point for ever. ``datetime_start`` is written from the creating
    machine's clock, so ``older_than`` must cover clock skew between machines as well.
    """
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    cutoff = now - datetime.timedelta(seconds=older_than)
    with storage.engine.connect() as connection:
        rows = connection.execute(_NO_HEARTBEAT, {"study_id": study_id, "cutoff": cutoff})
        return sorted(row[0] for row in rows)


@dataclass(frozen=True)
class TrialRow:
    """What a claim needs to know of one trial."""

    trial_id: int
    number: int
    state: TrialState
    system_attrs: dict[str, Any]


class TrialLedger:
    """An incremental, lean view of one study's trials: states and a few system attributes.

    Finished trials never change, so each is read once; later reads fetch only trials
    created since, and those still unfinished. A claim therefore costs about the same at
    10,000 trials as at 100.

    Args:
        storage: The study's RDB storage.
        study_id: The study, as ``storage.get_study_id_from_name`` gives it.
        keys: The system attribute keys to read with each trial.
    """

    def __init__(
        self, storage: optuna.storages.RDBStorage, study_id: int, keys: Sequence[str]
    ) -> None:
        self._engine = storage.engine
        self._study_id = study_id
        self._keys = list(keys)
        self._rows: dict[int, TrialRow] = {}
        self._settled_up_to = -1
        self._unsettled: set[int] = set()

    def rows(self) -> list[TrialRow]:
        """Every trial of the study, oldest first, as of now."""
        fresh: dict[int, TrialRow] = {}
        with self._engine.connect() as connection:
            result = connection.execute(
                _ROWS,
                {
                    "keys": self._keys,
                    "study_id": self._study_id,
                    "after": self._settled_up_to,
                    "unsettled": sorted(self._unsettled) or [-1],
                },
            )
            for trial_id, number, state, key, value_json in result:
                row = fresh.get(trial_id)
                if row is None:
                    row = TrialRow(trial_id, number, _state(state), {})
                    fresh[trial_id] = row
                if key is not None:
                    row.system_attrs[key] = json.loads(value_json)
        self._rows.update(fresh)
        for trial_id, row in fresh.items():
            if row.state.is_finished():
                self._unsettled.discard(trial_id)
            else:
                self._unsettled.add(trial_id)
        finished = [i for i, row in fresh.items() if row.state.is_finished()]
        if finished:
            self._settled_up_to = max(self._settled_up_to, *finished)
        return [self._rows[i] for i in sorted(self._rows)]


def _state(value: Any) -> TrialState:
    # SQLAlchemy's Enum column holds the member's name ("COMPLETE").
    return value if isinstance(value, TrialState) else TrialState[str(value)]
