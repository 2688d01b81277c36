"""The claim lock on every SQL dialect, and MySQL storages, against real servers.

What makes a dialect safe for many workers is the claim lock (a file lock on SQLite,
a transaction-level advisory lock on PostgreSQL, ``GET_LOCK`` on MySQL): it is tested
across real processes, the way workers on different machines use it, against real
PostgreSQL and MariaDB servers the tests start. Back ends tuner has no cross-process
lock for are refused with one clear line.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.mysql import PASSWORD, MariaDBServer
from tuner.errors import TunerError
from tuner.storages import claim_lock, open_storage

# A child that takes the claim lock ROUNDS times and, inside it, increments a counter in
# a file read-modify-write with a sleep in between (the file is replaced atomically, so a
# read always sees a whole number): any overlap loses an update. It also marks its
# presence with an O_EXCL file, so an overlap is seen directly too. Name "-": no lock.
COUNTER_CHILD = """
import os, sys, time
from pathlib import Path
from tuner.storages import claim_lock

url, name, folder, rounds = os.environ["TEST_URL"], sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
counter, inside = folder / "counter", folder / "inside"

def bump():
    try:
        marker = os.open(inside, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        (folder / f"overlap-{os.getpid()}-{time.monotonic_ns()}").touch()
        marker = None
    value = int(counter.read_text())
    time.sleep(0.01)
    written = folder / f"counter-{os.getpid()}"
    written.write_text(str(value + 1))
    os.replace(written, counter)
    if marker is not None:
        os.close(marker)
        os.unlink(inside)

(folder / f"ready-{os.getpid()}").touch()
while not (folder / "go").exists():
    time.sleep(0.01)
for _ in range(rounds):
    if name == "-":
        bump()
    else:
        with claim_lock(url, name):
            bump()
"""

# A child that takes the lock, says so, and holds it until told to let go (or killed).
HOLDER_CHILD = """
import os, sys, time
from pathlib import Path
from tuner.storages import claim_lock

folder = Path(sys.argv[2])
with claim_lock(os.environ["TEST_URL"], sys.argv[1]):
    (folder / "held").touch()
    deadline = time.monotonic() + 60
    while not (folder / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
"""


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    """Python children of a test; any still running when it ends is killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
        child.communicate()


def start_child(
    children: list[subprocess.Popen[str]], code: str, url: str, *args: str
) -> subprocess.Popen[str]:
    """Run ``code`` in a new Python process; the storage URL travels in the environment."""
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env={**os.environ, "TEST_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    children.append(child)
    return child


def wait_for(path: Path, child: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if child.poll() is not None:
            raise AssertionError(f"child exited {child.returncode}: {child.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path.name} did not appear within {timeout} s")
        time.sleep(0.02)


def test_open_storage_on_mariadb_runs_a_study(mysql_url: str) -> None:
    storage = open_storage(mysql_url)
    assert storage.get_heartbeat_interval() == 10

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_int("x", 0, 3)
        trial.set_user_attr("fold_0", {"accuracy": 0.5, "history": {"loss": [1.0, 0.5]}})
        trial.set_user_attr("fold_0", {"accuracy": 0.75, "history": {"loss": [1.0, 0.25]}})
        return x / 4

    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    study.set_user_attr("tuner.epochs", 3)
    study.optimize(objective, n_trials=3)

    # A second process's view: a new storage object on the same, now existing, tables.
    again = optuna.load_study(study_name="s", storage=open_storage(mysql_url, must_exist=True))
    assert [t.state for t in again.trials] == [TrialState.COMPLETE] * 3
    assert again.trials[0].user_attrs["fold_0"]["history"]["loss"] == [1.0, 0.25]
    assert again.user_attrs == {"tuner.epochs": 3}


def test_wrong_mariadb_password_is_one_line_without_it(mysql_url: str) -> None:
    url = mysql_url.replace(PASSWORD, "wrong-secret")
    with pytest.raises(TunerError) as error:
        open_storage(url)
    message = str(error.value)
    assert message.startswith("cannot open storage mysql+pymysql://tuner:***@127.0.0.1:")
    assert "Access denied" in message
    assert "wrong-secret" not in message and "\n" not in message


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def locking_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A storage URL of every dialect that has a cross-process claim lock."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lock.db'}"
    return request.getfixturevalue(f"{request.param}_url")


def test_claim_lock_is_exclusive_across_processes(
    locking_url: str, children: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    processes, rounds = 3, 12

    def race(name: str, folder: Path) -> tuple[int, int]:
        folder.mkdir()
        (folder / "counter").write_text("0")
        started = [
            start_child(children, COUNTER_CHILD, locking_url, name, str(folder), str(rounds))
            for _ in range(processes)
        ]
        # Every child waiting at the start line before the race begins: one slow to start
        # (a loaded machine) would otherwise run alone, and the unlocked race lose nothing.
        deadline = time.monotonic() + 120
        while len(list(folder.glob("ready-*"))) < processes:
            assert time.monotonic() < deadline, [child.poll() for child in started]
            time.sleep(0.05)
        (folder / "go").touch()
        for child in started:
            assert child.wait(timeout=120) == 0, child.communicate()
        overlaps = len(list(folder.glob("overlap-*")))
        return int((folder / "counter").read_text()), overlaps

    # Without the lock the same children lose updates: the race is real...
    unlocked, _ = race("-", tmp_path / "unlocked")
    assert unlocked < processes * rounds
    # ...and under it none is lost and no two processes were ever inside at once.
    assert race("study", tmp_path / "locked") == (processes * rounds, 0)


def test_claim_lock_blocks_the_same_study_only(
    mysql_server: MariaDBServer,
    mysql_url: str,
    children: list[subprocess.Popen[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    holder = start_child(children, HOLDER_CHILD, mysql_url, "study-a", str(tmp_path))
    wait_for(tmp_path / "held", holder)

    # Another study of the same database, and the same study name in another database
    # on the same server, are not held up.
    started = time.monotonic()
    with claim_lock(mysql_url, "study-b"):
        pass
    with claim_lock(mysql_server.new_database(), "study-a"):
        pass
    assert time.monotonic() - started < 10

    # The held study is: the claim gives up after the lock timeout, saying why.
    monkeypatch.setattr("tuner.storages._lock.LOCK_TIMEOUT_SECONDS", 1)
    with pytest.raises(TunerError) as error, claim_lock(mysql_url, "study-a"):
        raise AssertionError("entered a lock another process holds")
    message = str(error.value)
    assert "could not take the claim lock for 'study-a' within 1 s" in message
    assert "tuner:***@127.0.0.1" in message and PASSWORD not in message

    # A SIGKILLed holder's session ends with it, and the lock with the session.
    holder.kill()
    holder.wait(timeout=30)
    monkeypatch.setattr("tuner.storages._lock.LOCK_TIMEOUT_SECONDS", 10)
    with claim_lock(mysql_url, "study-a"):
        pass


@pytest.mark.parametrize(
    "url",
    [
        "mssql+pyodbc://u:secret@h/db",
        "oracle://u:secret@h:1521/db",
        "mariadb+pymysql://u:secret@127.0.0.1:3306/db",
    ],
)
def test_dialects_without_a_cross_process_lock_are_refused(url: str) -> None:
    for attempt in (lambda: open_storage(url), lambda: claim_lock(url, "study").__enter__()):
        with pytest.raises(TunerError) as error:
            attempt()
        message = str(error.value)
        assert "u:***@" in message
        assert "not supported" in message
        assert "mysql+pymysql://" in message  # says what to use instead
        assert "secret" not in message and "\n" not in message


SCHEDULING_CHILD = """
import time
import os
from tuner.scheduling import GridScheduler, TrialRunner
from tuner.storages import open_storage
from tuner.study import load

url = os.environ["TEST_URL"]
storage = open_storage(url, must_exist=True)
study, config = load(storage, "wide")
scheduler = GridScheduler(storage, url, study, config.definition)

def evaluate(claim, recorder):
    time.sleep(0.2)
    return claim.grid_id / 10

print(TrialRunner(scheduler, evaluate, poll_seconds=0.2).run().evaluated)
"""

WIDE_STUDY = """
description = "eight grid points, never trained"

[model]
batch_norm = false
dropout = 0.0

[grid]
l1 = [4, 8, 16, 32]
l2 = [2, 4]
"""


def test_workers_in_several_processes_complete_each_point_once(
    mysql_url: str, children: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    from tuner.data import DatasetSpec
    from tuner.study import StudyConfig, create_or_resume, load_definitions

    (tmp_path / "wide.toml").write_text(WIDE_STUDY)
    definition = load_definitions(tmp_path)["wide"]
    config = StudyConfig("wide", definition, DatasetSpec("synthetic"), "0" * 32, epochs=1)
    storage = open_storage(mysql_url)
    create_or_resume(storage, config)

    workers = [start_child(children, SCHEDULING_CHILD, mysql_url) for _ in range(3)]
    evaluated = []
    for worker in workers:
        out, err = worker.communicate(timeout=180)
        assert worker.returncode == 0, err
        evaluated.append(int(out.split()[-1]))

    trials = optuna.load_study(study_name="wide", storage=storage).trials
    grid_ids = sorted(t.system_attrs["grid_id"] for t in trials)
    assert grid_ids == list(range(definition.grid_size))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert all(t.value == t.system_attrs["grid_id"] / 10 for t in trials)
    assert sum(evaluated) == definition.grid_size


def test_lock_held_across_a_server_restart_is_let_go_quietly(
    mysql_server: MariaDBServer, mysql_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The claim's work is done when the unlock fails: raising would make it claim again."""
    logs = caplog.at_level(logging.WARNING, logger="tuner.storages._lock")
    with logs, claim_lock(mysql_url, "study"):
        mysql_server.restart(down_seconds=0.5)
    assert "connection was lost while held" in caplog.text
    assert PASSWORD not in caplog.text
    # The next claim reconnects.
    with claim_lock(mysql_url, "study"):
        pass
