"""Progress you can watch from anywhere: running trials' learning curves in the storage.

A real ``tuner launch`` trains a grid batch (the default trainer) while the test, as
another process would, reads the storage: every running trial's curve (its intermediate
values, step = epoch) grows epoch by epoch before the batch completes, ``tuner status``
shows the batch's epoch and ETA, and the final curve ends at the trial's value; and
optuna-dashboard's own API, which its pages draw from, serves the growing curves.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.helpers import fetch, free_port, run_tuner, serving_dashboard, wait_for
from tuner.storages import open_storage
from tuner.study import schema

EPOCHS = 400


def curves(db: Path) -> dict[int, tuple[TrialState, dict[int, float]]]:
    storage = open_storage(f"sqlite:///{db}", must_exist=True)
    study = optuna.load_study(study_name="tiny", storage=storage)
    return {t.number: (t.state, t.intermediate_values) for t in study.get_trials()}


def start_launch(
    tuner_processes: Callable[..., subprocess.Popen[str]],
    tmp_path: Path,
    studies_dir: Path,
    synthetic_npz: Path,
    db: Path,
) -> subprocess.Popen[str]:
    """A launch of the tiny grid (one batch of 3 points) for EPOCHS, curves every second."""
    return tuner_processes(
        "launch",
        "--variant",
        "tiny",
        "--dataset",
        str(synthetic_npz),
        "--studies",
        str(studies_dir),
        "--epochs",
        str(EPOCHS),
        "--curve-interval",
        "1",
        "--no-report",
        "--storage",
        f"sqlite:///{db}",
        cwd=tmp_path,
    )


def test_running_trials_curves_grow_in_the_storage_and_status_shows_them(
    tmp_path: Path,
    studies_dir: Path,
    synthetic_npz: Path,
    tuner_processes: Callable[..., subprocess.Popen[str]],
) -> None:
    db = tmp_path / "live.db"
    launch = start_launch(tuner_processes, tmp_path, studies_dir, synthetic_npz, db)
    seen: list[dict[int, int]] = []

    def batch_reports_epochs() -> bool:
        if launch.poll() is not None:
            raise AssertionError(f"launch ended before its curves grew: {launch.communicate()}")
        try:
            now = curves(db)
        except Exception:  # the storage or the study may not exist yet
            return False
        running = {n: len(values) for n, (state, values) in now.items()}
        if len(now) < 3 or any(state != TrialState.RUNNING for state, _ in now.values()):
            return False
        if min(running.values()) == 0:
            return False
        seen.append(running)
        # Two reads, every trial further along in the second, all of them still running.
        return any(all(running[n] > earlier[n] for n in running) for earlier in seen[:-1])

    wait_for(batch_reports_epochs)
    status = run_tuner("status", "--storage", f"sqlite:///{db}", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    lines = [line for line in status.stdout.splitlines() if "epoch " in line]
    assert len(lines) == 3, status.stdout  # every point of the running batch
    shown = re.compile(rf"; epoch \d+/{EPOCHS}, val accuracy [01]\.\d{{4}}, ETA \d+:\d\d:\d\d$")
    assert all(shown.search(line) for line in lines), lines

    _, stderr = launch.communicate(timeout=600)
    assert launch.returncode == 0, stderr
    storage = open_storage(f"sqlite:///{db}", must_exist=True)
    for trial in optuna.load_study(study_name="tiny", storage=storage).get_trials():
        assert trial.state == TrialState.COMPLETE
        assert sorted(trial.intermediate_values) == list(range(1, EPOCHS + 1))
        # The curve's last point is the trial's value: the same quantity, live.
        assert trial.intermediate_values[EPOCHS] == pytest.approx(trial.value)
        assert trial.user_attrs[schema.FOLD_ACCURACIES]


def test_optuna_dashboard_serves_running_trials_growing_curves(
    tmp_path: Path,
    studies_dir: Path,
    synthetic_npz: Path,
    tuner_processes: Callable[..., subprocess.Popen[str]],
) -> None:
    """What a browser on optuna-dashboard gets: its own API, read twice while training."""
    db = tmp_path / "live.db"
    launch = start_launch(tuner_processes, tmp_path, studies_dir, synthetic_npz, db)
    wait_for(lambda: db.exists() and launch.poll() is None)
    argv = ["dashboard", "--port", str(free_port()), "--storage", f"sqlite:///{db}"]
    with serving_dashboard(argv, cwd=tmp_path) as base:
        reads: list[dict[int, int]] = []

        def grown() -> bool:
            if launch.poll() is not None:
                raise AssertionError(f"launch ended before: {launch.communicate()}")
            studies = json.loads(fetch(f"{base}/api/studies"))["study_summaries"]
            if not studies:
                return False
            detail = json.loads(fetch(f"{base}/api/studies/{studies[0]['study_id']}"))
            trials = detail["trials"]
            if len(trials) < 3 or any(t["state"] != "Running" for t in trials):
                return False
            steps = {t["number"]: len(t["intermediate_values"]) for t in trials}
            if min(steps.values()) == 0:
                return False
            reads.append(steps)
            return any(all(steps[n] > earlier[n] for n in steps) for earlier in reads[:-1])

        wait_for(grown)
    launch.terminate()
