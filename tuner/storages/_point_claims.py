"""Which trial holds each grid point, kept by the database itself: exactly-once, enforced.

The claim lock (:mod:`tuner.storages._lock`) makes "read the trials, create the next
ones" atomic, but it is only a lock: if its connection drops while a claim runs (a
killed session, a failover), the server lets it go and a second worker may pick the
same points before the first has created them. So every claimed point is also recorded
in a small tuner-owned table, ``tuner_point_claims``, whose primary key (study, grid
point) the database enforces: a point has one holder row, naming the trial entitled to
train it. A claim takes a point by inserting that row, or, where the holder has failed,
by swapping it in one conditional update (compare-and-swap on the old holder). A RUNNING
or COMPLETE holder is never swapped, so of two live claims of one point exactly one
takes it, whatever became of the lock; the other gives its trial back.
"""

from __future__ import annotations

import optuna
import sqlalchemy
from optuna.trial import TrialState
from sqlalchemy.exc import IntegrityError

_METADATA = sqlalchemy.MetaData()
POINT_CLAIMS = sqlalchemy.Table(
    "tuner_point_claims",
    _METADATA,
    sqlalchemy.Column("study_id", sqlalchemy.Integer, primary_key=True, autoincrement=False),
    sqlalchemy.Column("grid_id", sqlalchemy.Integer, primary_key=True, autoincrement=False),
    sqlalchemy.Column("trial_id", sqlalchemy.Integer, nullable=False),
)
"""The holder of each claimed grid point: one row per (study, grid point)."""


def create_point_claims(engine: sqlalchemy.engine.Engine) -> None:
    """Create the table where it is missing (call it under the schema lock)."""
    _METADATA.create_all(engine, checkfirst=True)


def point_holder(storage: optuna.storages.RDBStorage, study_id: int, grid_id: int) -> int | None:
    """The trial that holds the point, or None when nobody ever claimed it."""
    table = POINT_CLAIMS
    with storage.engine.connect() as connection:
        holder = connection.execute(
            sqlalchemy.select(table.c.trial_id).where(
                table.c.study_id == study_id, table.c.grid_id == grid_id
            )
        ).scalar()
    return None if holder is None else int(holder)


def take_point(
    storage: optuna.storages.RDBStorage, study_id: int, grid_id: int, trial_id: int
) -> bool:
    """Make ``trial_id`` the point's holder; False when a RUNNING or COMPLETE trial holds it.

    Safe without any lock: the database refuses a second row for the point, and swaps a
    failed holder only if it is still the holder the caller saw.
    """
    table = POINT_CLAIMS
    try:
        with storage.engine.begin() as connection:
            connection.execute(
                table.insert().values(study_id=study_id, grid_id=grid_id, trial_id=trial_id)
            )
        return True
    except IntegrityError:
        pass  # the point has a holder: take it only from a trial that failed
    holder = point_holder(storage, study_id, grid_id)
    if holder is None or holder == trial_id:
        return holder == trial_id
    if storage.get_trial(holder).state in (TrialState.RUNNING, TrialState.COMPLETE):
        return False
    with storage.engine.begin() as connection:
        swapped = connection.execute(
            table.update()
            .where(
                table.c.study_id == study_id,
                table.c.grid_id == grid_id,
                table.c.trial_id == holder,
            )
            .values(trial_id=trial_id)
        )
    return swapped.rowcount == 1
