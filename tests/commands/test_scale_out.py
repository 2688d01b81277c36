"""Many real `tuner worker` processes on one study, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import datetime
import functools
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.helpers import run_tuner, wait_for
from tuner.scheduling import GridState
from tuner.storages import open_storage
from tuner.study import schema
from tuner.study.schema import FAIL_REASON, GRID_ID, INTERRUPTED

# Minutes of many-process runs: in .ci/run by marker (`pytest -m heavy`), not README's
# test command, which stays under its time.
pytestmark = pytest.mark.heavy

Start = Callable[..., subprocess.Popen[str]]

NINE_POINTS = """
[model]
batch_norm = true
dropout = 0.2
[grid]
l1 = [8, 16, 32]
l2 = [4, 8, 16]
[protocol]
batch_size = 32
"""


@pytest.fixture
def nine(tmp_path: Path) -> Path:
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "nine.toml").write_text(NINE_POINTS)
    return folder


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    return request.getfixturevalue("postgres_url")


def create_study(url: str, nine: Path, npz: Path, cwd: Path, epochs: int = 1) -> None:
    result = run_tuner(
        "launch",
        "--variant",
        "nine",
        "--studies",
        str(nine),
        "--dataset",
        str(npz),
        "--epochs",
        str(epochs),
        "--workers",
        "0",
        cwd=cwd,
        env={"TUNER_STORAGE": url},
    )
    assert result.returncode == 0, result.stderr
    assert "tuner worker --study-name nine" in result.stdout


def start_worker(start: Start, url: str, cwd: Path, *extra: str) -> subprocess.Popen[str]:
    argv = ["worker", "--study-name", "nine", "--threads", "1", *extra]
    return start(*argv, cwd=cwd, env={"TUNER_STORAGE": url})


@functools.cache
def reader(url: str) -> optuna.storages.RDBStorage:
    # Through tuner's opener: it configures the driver for a transaction-mode pooler.
    return open_storage(url)


def trials(url: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="nine", storage=reader(url)).get_trials()


def assert_exactly_once(all_trials: list[optuna.trial.FrozenTrial]) -> None:
    complete = [t for t in all_trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 9
    assert len({(t.params["l1"], t.params["l2"]) for t in complete}) == 9
    assert sorted(t.system_attrs[GRID_ID] for t in complete) == list(range(9))


def wait_for_running(
    url: str, worker: subprocess.Popen[str], timeout: float = 120
) -> optuna.trial.FrozenTrial:
    """The first RUNNING trial in training; fails at once, with its output, if the worker
    exits first.

    In training, not being claimed: its units are recorded once the claim has returned,
    so a signal sent next lands in training (an interrupt inside Optuna's trial creation
    would leave a trial without a heartbeat, for the orphan reaper).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [
            t for t in trials(url) if t.state == TrialState.RUNNING and schema.UNITS in t.user_attrs
        ]
        if running:
            return running[0]
        if worker.poll() is not None:
            raise AssertionError(f"worker exited {worker.returncode}: {worker.communicate()}")
        time.sleep(0.3)
    raise AssertionError("no trial started")


def frozen_while_running(
    worker: subprocess.Popen[str], url: str, timeout: float = 120
) -> optuna.trial.FrozenTrial:
    """Stop (SIGSTOP) the worker at a moment it holds a RUNNING trial; that trial.

    A frozen worker cannot finish its trial, so a SIGKILL sent next cannot miss it,
    however fast trials are on this machine.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wait_for_running(url, worker, timeout=deadline - time.monotonic())
        worker.send_signal(signal.SIGSTOP)
        running = [t for t in trials(url) if t.state == TrialState.RUNNING]
        if running:
            return running[0]
        worker.send_signal(signal.SIGCONT)
    raise AssertionError("the worker never held a running trial")


def test_four_workers_cover_the_grid_exactly_once(
    storage_url: str, nine: Path, synthetic_npz: Path, tmp_path: Path, tuner_processes: Start
) -> None:
    create_study(storage_url, nine, synthetic_npz, tmp_path)
    workers = [start_worker(tuner_processes, storage_url, tmp_path, "--no-live") for _ in range(4)]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (stdout, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
        assert "grid done: 9/9 complete" in stdout
        assert "password" not in stdout + stderr and "tuner-test-pw" not in stdout + stderr
    all_trials = trials(storage_url)
    assert len(all_trials) == 9  # no duplicate, no extra trial after the grid was done
    assert_exactly_once(all_trials)
    evaluated = sum(int(out.rsplit("evaluated ", 1)[1].split()[0]) for out, _ in outputs)
    assert evaluated == 9


def test_sigkilled_worker_point_is_rerun_by_another(
    storage_url: str, nine: Path, synthetic_npz: Path, tmp_path: Path, tuner_processes: Start
) -> None:
    create_study(storage_url, nine, synthetic_npz, tmp_path, epochs=6)
    victim = start_worker(tuner_processes, storage_url, tmp_path, "--heartbeat-interval", "1")
    doomed = frozen_while_running(victim, storage_url)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)
    assert trials(storage_url)[doomed.number].state == TrialState.RUNNING  # orphaned
    survivor = start_worker(tuner_processes, storage_url, tmp_path, "--heartbeat-interval", "1")
    _, stderr = survivor.communicate(timeout=600)
    assert survivor.returncode == 0, stderr
    all_trials = trials(storage_url)
    assert_exactly_once(all_trials)
    killed = all_trials[doomed.number]
    assert killed.state == TrialState.FAIL
    assert killed.system_attrs[FAIL_REASON] == "stale heartbeat"
    rerun = [
        t
        for t in all_trials
        if t.state == TrialState.COMPLETE
        and t.system_attrs[GRID_ID] == killed.system_attrs[GRID_ID]
    ]
    assert len(rerun) == 1 and rerun[0].number > killed.number


def test_sigterm_gives_the_point_back(
    postgres_url: str, nine: Path, synthetic_npz: Path, tmp_path: Path, tuner_processes: Start
) -> None:
    create_study(postgres_url, nine, synthetic_npz, tmp_path, epochs=150)
    worker = start_worker(tuner_processes, postgres_url, tmp_path)
    stopped = wait_for_running(postgres_url, worker)
    # The whole batch in training (a claim creates its 9 trials one by one).
    wait_for(
        lambda: sum(schema.UNITS in t.user_attrs for t in trials(postgres_url)) == 9,
    )
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 143, stderr
    assert time.monotonic() - started < 20
    assert "Traceback" not in stderr
    trial = trials(postgres_url)[stopped.number]
    assert trial.state == TrialState.FAIL and trial.system_attrs[INTERRUPTED] is True
    # The point is free again, and (claims go in grid order) the next claim takes it.

    state = GridState.of(trials(postgres_url), 9)
    assert not state.running
    assert state.next_points(max_attempts=3, count=1) == [trial.system_attrs[GRID_ID]]


def test_launch_with_local_workers(nine: Path, synthetic_npz: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'local.db'}"
    result = run_tuner(
        "launch",
        "--variant",
        "nine",
        "--studies",
        str(nine),
        "--dataset",
        str(synthetic_npz),
        "--epochs",
        "1",
        "--workers",
        "2",
        "--storage",
        url,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "starting 2 local workers" in result.stdout
    assert "best nine:" in result.stdout
    assert_exactly_once(trials(url))
    assert len({t.user_attrs["pid"] for t in trials(url)}) == 2


def test_worker_refuses_changed_data(nine: Path, synthetic_npz: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data.db'}"
    create_study(url, nine, synthetic_npz, tmp_path)
    import numpy as np

    with np.load(synthetic_npz) as archive:
        arrays = dict(archive)
    arrays["x_train"][0, 0, 0] ^= 1
    np.savez(synthetic_npz, **arrays)
    result = run_tuner("worker", "--study-name", "nine", "--storage", url, cwd=tmp_path)
    assert result.returncode == 2
    assert "fingerprint mismatch" in result.stderr
    assert trials(url) == []  # nothing claimed
    # It announced itself early (for fair shares), and withdrew when it gave up.
    storage = reader(url)
    attrs = storage.get_study_system_attrs(storage.get_study_id_from_name("nine"))
    announced = [value for key, value in attrs.items() if key.startswith(schema.WORKER_PREFIX)]
    assert announced == [0]


def test_worker_errors_are_clean(tmp_path: Path) -> None:
    missing = run_tuner("worker", "--storage", f"sqlite:///{tmp_path / 'typo.db'}", cwd=tmp_path)
    assert missing.returncode == 2 and "no such database file" in missing.stderr
    assert not (tmp_path / "typo.db").exists()
    status = run_tuner("status", "--storage", f"sqlite:///{tmp_path / 'typo.db'}", cwd=tmp_path)
    assert status.returncode == 2 and "Traceback" not in status.stderr


def test_status_shows_the_live_picture(
    nine: Path, synthetic_npz: Path, tmp_path: Path, tuner_processes: Start
) -> None:
    url = f"sqlite:///{tmp_path / 'status.db'}"
    create_study(url, nine, synthetic_npz, tmp_path, epochs=150)
    worker = start_worker(tuner_processes, url, tmp_path)
    try:
        running = wait_for_running(url, worker)
        # A claim creates its trials one by one: wait for the whole batch.
        wait_for(lambda: sum(t.state == TrialState.RUNNING for t in trials(url)) == 9)
        result = run_tuner("status", "--storage", url, cwd=tmp_path)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=60)
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("│ nine"))
    cells = [cell.strip() for cell in row.strip("│").split("│")]
    # The default trainer (grid) trains the whole grid as one batch: every point running.
    assert cells[:6] == ["nine", "9", "0", "9", "0", "0"]
    assert f"trial {running.number} [l1=" in result.stdout
    assert f"/{worker.pid} since" in result.stdout


def test_postgres_restart_mid_trial_loses_nothing(
    postgres_server, nine: Path, synthetic_npz: Path, tmp_path: Path, tuner_processes: Start
) -> None:
    url = postgres_server.new_database()
    create_study(url, nine, synthetic_npz, tmp_path, epochs=8)
    worker = start_worker(tuner_processes, url, tmp_path, "--heartbeat-interval", "2")
    wait_for_running(url, worker)
    down = datetime.datetime.now()
    postgres_server.restart(down_seconds=3)
    _, stderr = worker.communicate(timeout=600)
    assert worker.returncode == 0, stderr
    all_trials = trials(url)
    assert_exactly_once(all_trials)
    assert len(all_trials) == 9  # nothing failed, nothing trained twice
    # The outage fell inside the batch's training, which rode it out (asserted on what
    # happened, not on which of the worker's writes met the outage first and said so).
    assert all(t.datetime_start < down < t.datetime_complete for t in all_trials)


@pytest.fixture
def pooled_url() -> Iterator[str]:
    """A database on a server with too few connections for 16 workers, behind PgBouncer."""
    from tests import postgres

    if not postgres.available() or not postgres.PGBOUNCER.exists():
        pytest.skip("PostgreSQL 15 and PgBouncer not installed (.ci/run installs them)")
    with (
        postgres.running_server(max_connections=20) as server,
        postgres.running_pgbouncer(server, pool_size=8) as port,
    ):
        direct = server.new_database()
        yield direct.replace(f":{server.port}/", f":{port}/")


@pytest.mark.soak
def test_sixteen_workers_share_few_connections_through_pgbouncer(
    pooled_url: str, nine: Path, synthetic_npz: Path, tmp_path: Path, tuner_processes: Start
) -> None:
    # 16 workers hold 3 connections each (48) on a server that allows 17 for them: only
    # the pooler, in transaction mode, makes this work, and the claim lock must hold there.
    create_study(pooled_url, nine, synthetic_npz, tmp_path)
    workers = [start_worker(tuner_processes, pooled_url, tmp_path, "--no-live") for _ in range(16)]
    outputs = [worker.communicate(timeout=900) for worker in workers]
    for worker, (stdout, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
        assert "grid done: 9/9 complete" in stdout
        assert "tuner-test-pw" not in stdout + stderr
    all_trials = trials(pooled_url)
    assert len(all_trials) == 9
    assert_exactly_once(all_trials)


def test_grid_batch_given_back_on_sigterm_and_rerun_after_sigkill(
    nine: Path, synthetic_npz: Path, tmp_path: Path, tuner_processes: Start
) -> None:
    url = f"sqlite:///{tmp_path / 'grid.db'}"
    create_study(url, nine, synthetic_npz, tmp_path, epochs=150)
    grid = ("--trainer", "grid", "--pack", "4", "--heartbeat-interval", "1")

    def held_batch(worker: subprocess.Popen[str]) -> list[optuna.trial.FrozenTrial]:
        # A claim creates its trials one by one under the lock: wait for the whole batch.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            wait_for_running(url, worker)
            running = [t for t in trials(url) if t.state == TrialState.RUNNING]
            if len(running) >= 4 and all(schema.UNITS in t.user_attrs for t in running):
                return running
            time.sleep(0.2)
        raise AssertionError(f"the worker never held a batch of 4: {running}")

    # SIGTERM: every point of the batch is given back, not charged an attempt.
    worker = start_worker(tuner_processes, url, tmp_path, *grid)
    batch = held_batch(worker)
    assert len(batch) == 4  # one worker alive: it takes --pack points at once
    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 143, stderr
    after = {t.number: t for t in trials(url)}
    for trial in batch:
        assert after[trial.number].state == TrialState.FAIL
        assert after[trial.number].system_attrs[INTERRUPTED] is True

    # SIGKILL: the batch goes stale and every point of it is re-run, none twice.
    victim = start_worker(tuner_processes, url, tmp_path, *grid)
    doomed = held_batch(victim)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)
    survivor = start_worker(tuner_processes, url, tmp_path, *grid[:2], *grid[4:])
    _, stderr = survivor.communicate(timeout=900)
    assert survivor.returncode == 0, stderr
    final = trials(url)
    assert_exactly_once(final)
    by_number = {t.number: t for t in final}
    for trial in doomed:
        assert by_number[trial.number].system_attrs[FAIL_REASON] == "stale heartbeat"
