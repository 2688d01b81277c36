"""Exactly-once held by the database itself: the point-holder table, on real servers.

The claim lock serialises claims, but a lock is only as good as its connection. These
tests take the lock away in the middle of a claim (the server kills its session) while
a second worker waits for it, and check that the database's own key on
``tuner_point_claims`` still lets no grid point be held or completed twice.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from tests.storages.test_lock import children, locking_url, start_child  # noqa: F401
from tuner.data import DatasetSpec
from tuner.scheduling import DUPLICATE_CLAIM
from tuner.storages import open_storage, point_holder, take_point
from tuner.study import StudyConfig, create_or_resume, load_definitions, running_trial_template

WIDE = """
description = "many grid points, never trained"

[model]
batch_norm = false
dropout = 0.0

[grid]
l1 = {units}
l2 = [2]
"""


def make_study(url: str, folder: Path, points: int) -> tuple[optuna.storages.RDBStorage, int]:
    (folder / "wide.toml").write_text(WIDE.format(units=list(range(1, points + 1))))
    definition = load_definitions(folder)["wide"]
    config = StudyConfig("wide", definition, DatasetSpec("synthetic"), "0" * 32, epochs=1)
    storage = open_storage(url)
    study = create_or_resume(storage, config)
    return storage, storage.get_study_id_from_name(study.study_name)


def new_trial(storage: optuna.storages.RDBStorage, study_id: int, grid_id: int) -> int:
    """A RUNNING trial of the point, as a claim creates it (not yet its holder)."""
    study = optuna.load_study(study_name="wide", storage=storage)
    definition = StudyConfig.from_study(study).definition
    template = running_trial_template(study, definition, grid_id)
    return storage.create_new_trial(study_id, template_trial=template)


def test_a_point_has_one_live_holder(locking_url: str, tmp_path: Path) -> None:  # noqa: F811
    storage, study_id = make_study(locking_url, tmp_path, points=4)
    first, second = new_trial(storage, study_id, 0), new_trial(storage, study_id, 0)
    assert take_point(storage, study_id, 0, first)
    assert not take_point(storage, study_id, 0, second)  # the holder is RUNNING
    storage.set_trial_state_values(first, state=TrialState.FAIL)
    assert take_point(storage, study_id, 0, second)  # a failed holder is swapped
    storage.set_trial_state_values(second, state=TrialState.COMPLETE, values=[0.5])
    third = new_trial(storage, study_id, 0)
    assert not take_point(storage, study_id, 0, third)  # a completed point stays its own
    assert point_holder(storage, study_id, 0) == second

    # Many claimers of one fresh point at the same moment: the database lets one in.
    ids = [new_trial(storage, study_id, 1) for _ in range(8)]
    start, taken = threading.Barrier(len(ids)), []

    def take(trial_id: int) -> None:
        start.wait()
        if take_point(storage, study_id, 1, trial_id):
            taken.append(trial_id)

    threads = [threading.Thread(target=take, args=(trial_id,)) for trial_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 1 and point_holder(storage, study_id, 1) == taken[0]


CLAIMING_CHILD = """
import os, sys, time
from pathlib import Path
from tuner.scheduling import GridScheduler, TrialRunner
from tuner.storages import open_storage
from tuner.study import load

url, folder = os.environ["TEST_URL"], Path(sys.argv[1])
storage = open_storage(url, must_exist=True)
study, config = load(storage, "wide")
scheduler = GridScheduler(storage, url, study, config.definition, expected_workers=1)
(folder / f"ready-{os.getpid()}").touch()
while not (folder / "go").exists():
    time.sleep(0.01)

def evaluate_batch(claims, recorders):
    time.sleep(0.2)
    return [claim.grid_id / 1000 for claim in claims]

runner = TrialRunner(
    scheduler, lambda claim, recorder: claim.grid_id / 1000,
    evaluate_batch=evaluate_batch, claim_size=1000, poll_seconds=0.2,
)
print(runner.run().evaluated)
"""


def _kill_lock_session(url: str, engine: sqlalchemy.engine.Engine) -> bool:
    """Kill the server session that holds the study's claim lock; True if one did."""
    with engine.connect() as connection:
        if url.startswith("postgresql"):
            killed = connection.execute(
                sqlalchemy.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted"
                )
            ).all()
            return any(row[0] for row in killed)
        from tuner.storages._lock import _mysql_lock_name

        holder = connection.execute(
            sqlalchemy.text("SELECT IS_USED_LOCK(:name)"),
            {"name": _mysql_lock_name(url, "wide")},
        ).scalar()
        if holder is None:
            return False
        connection.execute(sqlalchemy.text(f"KILL {int(holder)}"))
        return True


@pytest.mark.parametrize("server", ["postgres", "mysql"])
def test_a_lock_lost_mid_claim_never_holds_a_point_twice(
    server: str,
    request: pytest.FixtureRequest,
    children: list[subprocess.Popen[str]],  # noqa: F811
    tmp_path: Path,
) -> None:
    url = request.getfixturevalue(f"{server}_url")
    points = 240
    storage, study_id = make_study(url, tmp_path, points)
    workers = [start_child(children, CLAIMING_CHILD, url, str(tmp_path)) for _ in range(2)]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < 2:
        assert time.monotonic() < deadline, [w.poll() for w in workers]
        time.sleep(0.05)
    (tmp_path / "go").touch()
    # Kill the lock's session while its holder is part-way through creating its trials.
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    killed = False
    while not killed and time.monotonic() < deadline:
        created = len(optuna.load_study(study_name="wide", storage=storage).trials)
        if 10 <= created < points // 2:
            killed = _kill_lock_session(url, engine)
        elif created >= points // 2:
            break
        time.sleep(0.01)
    assert killed, "the claim ended before its lock could be taken away; claim more points"
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err

    trials = optuna.load_study(study_name="wide", storage=storage).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(t.system_attrs["grid_id"] for t in complete) == list(range(points))
    refused = [t for t in trials if t.system_attrs.get("tuner.fail_reason") == DUPLICATE_CLAIM]
    assert all(t.value is None for t in refused)  # a refused claim never trained
    for grid_id in range(points):
        holder = point_holder(storage, study_id, grid_id)
        assert holder in {t._trial_id for t in complete if t.system_attrs["grid_id"] == grid_id}
