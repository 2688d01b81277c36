"""The grid worker, in process, with real TensorFlow and a real SQLite storage."""

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tuner.data import DatasetSpec, load_dataset
from tuner.definitions import load_definitions
from tuner.errors import TunerError
from tuner.grid import FAIL_REASON, GRID_ID, GridState
from tuner.storage import open_storage
from tuner.study import StudyConfig, create_or_resume
from tuner.worker import GridWorker, ensure_complete


@pytest.fixture
def setup(tmp_path: Path, studies_dir: Path, synthetic_npz: Path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    storage = open_storage(url, heartbeat_interval=1, grace_period=2)
    spec = DatasetSpec.parse(str(synthetic_npz))
    dataset = load_dataset(spec)
    config = StudyConfig(
        study_name="tiny",
        definition=load_definitions(studies_dir)["tiny"],
        dataset=spec,
        data_fingerprint=dataset.fingerprint(),
        epochs=1,
    )
    study = create_or_resume(storage, config)
    return url, storage, study, config, dataset


def system_attrs(trial: optuna.Trial) -> dict:
    return trial.study._storage.get_trial(trial._trial_id).system_attrs


def make_worker(setup, **kwargs) -> GridWorker:
    url, storage, study, config, dataset = setup
    return GridWorker(storage, url, study, config, dataset, poll_seconds=0.2, **kwargs)


def test_worker_covers_the_grid_exactly_once(setup) -> None:
    _, _, study, config, _ = setup
    report = make_worker(setup).run()
    trials = study.get_trials()
    assert report.evaluated == 3 == len(trials)
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert sorted(t.params["l1"] for t in trials) == [8, 16, 32]
    assert sorted(t.system_attrs[GRID_ID] for t in trials) == [0, 1, 2]
    for trial in trials:
        assert 0.0 <= trial.value <= 1.0
        assert len(trial.user_attrs["fold_accuracies"]) == 3
        assert trial.value == pytest.approx(sum(trial.user_attrs["fold_accuracies"]) / 3)
        fold = trial.user_attrs["fold_0"]
        assert set(fold["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert len(fold["history"]["val_loss"]) == config.epochs
        assert trial.user_attrs["device"] == "CPU:0"
        assert trial.user_attrs["pid"] > 0 and trial.user_attrs["host"]
        assert sorted(trial.intermediate_values) == [0, 1, 2]
    # A second worker on a finished grid creates nothing.
    assert make_worker(setup).run().evaluated == 0
    assert len(study.get_trials()) == 3


def test_stale_trial_is_failed_and_its_point_rerun(setup) -> None:
    _, _storage, study, _, _ = setup
    # A worker that died mid-trial: RUNNING, grid point 1, heartbeat long stopped.
    worker = make_worker(setup)
    claim, _ = worker._claim()
    assert claim is not None
    orphan = claim.trial._trial_id
    claim.trial.suggest_categorical("l1", [8, 16, 32])
    import time

    time.sleep(3.5)
    report = make_worker(setup).run()
    assert report.evaluated == 3
    states = {t._trial_id: t for t in study.get_trials()}
    assert states[orphan].state == TrialState.FAIL
    assert states[orphan].system_attrs[FAIL_REASON] == "stale heartbeat"
    complete = [t for t in states.values() if t.state == TrialState.COMPLETE]
    assert sorted(t.system_attrs[GRID_ID] for t in complete) == [0, 1, 2]


def test_interrupted_attempt_reuses_finished_folds(setup) -> None:
    _, _, study, _config, _ = setup
    worker = make_worker(setup)
    # First attempt finishes fold 0, then is interrupted.
    claim, _ = worker._claim()
    assert claim is not None
    trial = claim.trial
    fold_zero = {
        "fold": 0,
        "accuracy": 0.5,
        "loss": 1.0,
        "seconds": 1.0,
        "history": {k: [0.5] for k in ("loss", "accuracy", "val_loss", "val_accuracy")},
    }
    trial.suggest_categorical("l1", [8, 16, 32])
    trial.set_user_attr("fold_0", fold_zero)
    worker._fail(trial, "interrupted by SIGINT", retryable=True, interrupted=True)
    make_worker(setup).run()
    rerun = [
        t
        for t in study.get_trials(states=(TrialState.COMPLETE,))
        if t.system_attrs[GRID_ID] == system_attrs(trial)[GRID_ID]
    ]
    assert len(rerun) == 1
    assert rerun[0].user_attrs["fold_0"] == fold_zero
    assert rerun[0].user_attrs["fold_accuracies"][0] == 0.5


def test_points_that_keep_failing_are_given_up_and_named(setup) -> None:
    _, _storage, study, config, _ = setup
    worker = make_worker(setup, max_attempts=2)
    for _ in range(2):
        claim, _ = worker._claim()
        assert claim is not None and system_attrs(claim.trial)[GRID_ID] == 0
        claim.trial.suggest_categorical("l1", [8, 16, 32])
        claim.trial.suggest_categorical("l2", [8])
        worker._fail(claim.trial, "OSError: disk full", retryable=True)
    report = worker.run()
    assert report.evaluated == 2
    with pytest.raises(TunerError) as error:
        ensure_complete(study, config, report, max_attempts=2)
    assert "2 attempts, last: OSError: disk full" in str(error.value)


def test_grid_state_counts() -> None:
    def trial(grid_id: int, state: TrialState, **attrs) -> optuna.trial.FrozenTrial:
        return optuna.trial.FrozenTrial(
            number=0,
            state=state,
            value=None,
            datetime_start=None,
            datetime_complete=None,
            params={},
            distributions={},
            user_attrs={},
            system_attrs={GRID_ID: grid_id, **attrs},
            intermediate_values={},
            trial_id=0,
        )

    state = GridState.of(
        [
            trial(0, TrialState.COMPLETE),
            trial(1, TrialState.RUNNING),
            trial(2, TrialState.FAIL),
            trial(2, TrialState.FAIL, **{"tuner.interrupted": True}),
            trial(3, TrialState.FAIL, **{"tuner.retryable": False}),
        ],
        grid_size=5,
    )
    assert state.next_point(max_attempts=3) == 2
    assert state.failures[2] == 1
    assert state.given_up(max_attempts=3) == [3]
    assert state.given_up(max_attempts=1) == [2, 3]
    assert state.next_point(max_attempts=1) == 4
