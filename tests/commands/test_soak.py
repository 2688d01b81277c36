"""Soak: many real workers on one study while SIGKILLs hit workers that hold a trial.

Marked ``soak`` (run by .ci/run, deselected by README's test command for time): each
case runs 8 TensorFlow workers on 2 cores for a couple of minutes.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.commands.test_scale_out import create_study, start_worker, trials
from tuner.study import schema

EIGHTEEN_POINTS = """
[model]
batch_norm = true
dropout = 0.2
[grid]
l1 = [4, 8, 12, 16, 24, 32]
l2 = [4, 8, 16]
[protocol]
batch_size = 32
"""

WORKERS = 8
KILLS = 3
Start = Callable[..., subprocess.Popen[str]]


@pytest.fixture(params=["sqlite", "postgres"])
def soak_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'soak.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.mark.soak
def test_workers_killed_while_holding_trials_lose_nothing_and_repeat_nothing(
    soak_url: str, synthetic_npz: Path, tmp_path: Path, tuner_processes: Start
) -> None:
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "nine.toml").write_text(EIGHTEEN_POINTS)
    create_study(soak_url, studies, synthetic_npz, tmp_path, epochs=8)
    extra = ("--heartbeat-interval", "1", "--no-live")
    workers = {}
    for _ in range(WORKERS):
        worker = start_worker(tuner_processes, soak_url, tmp_path, *extra)
        workers[worker.pid] = worker
    killed_trials: list[int] = []
    deadline = time.monotonic() + 300
    while len(killed_trials) < KILLS and time.monotonic() < deadline:
        holding = [
            t
            for t in trials(soak_url)
            if t.state == TrialState.RUNNING
            and workers.get(t.user_attrs.get(schema.PID)) is not None
            and workers[t.user_attrs[schema.PID]].poll() is None
        ]
        if not holding:
            time.sleep(0.2)
            continue
        target = holding[0]
        victim = workers[target.user_attrs[schema.PID]]
        # Frozen, it cannot finish the trial between our look and the kill.
        victim.send_signal(signal.SIGSTOP)
        if next(t for t in trials(soak_url) if t.number == target.number).state != (
            TrialState.RUNNING
        ):
            victim.send_signal(signal.SIGCONT)
            continue
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=30)
        del workers[victim.pid]
        killed_trials.append(target.number)
        replacement = start_worker(tuner_processes, soak_url, tmp_path, *extra)
        workers[replacement.pid] = replacement
    assert len(killed_trials) == KILLS, "the grid finished before every kill landed"

    for worker in workers.values():
        _, stderr = worker.communicate(timeout=600)
        assert worker.returncode == 0, stderr
        assert "Traceback" not in stderr
    everything = trials(soak_url)
    complete = [t for t in everything if t.state == TrialState.COMPLETE]
    # Exactly once: every grid point has one COMPLETE trial, none has two.
    assert sorted(t.system_attrs[schema.GRID_ID] for t in complete) == list(range(18))
    # Nothing lost or left behind: no trial still RUNNING, and each killed one is a FAIL
    # with the reason recorded (its point was completed by another trial above).
    assert not [t for t in everything if t.state == TrialState.RUNNING]
    by_number = {t.number: t for t in everything}
    for number in killed_trials:
        trial = by_number[number]
        assert trial.state == TrialState.FAIL
        assert trial.system_attrs[schema.FAIL_REASON] == schema.STALE_REASON
