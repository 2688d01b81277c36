"""End to end: the real `tuner` command in subprocesses, real TensorFlow, real SQLite."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.helpers import free_port, run_tuner, wait_for
from tuner.storages import open_storage
from tuner.study.schema import GRID_ID, INTERRUPTED, UNITS


def trials_of(db: Path, study: str = "tiny") -> list[optuna.trial.FrozenTrial]:
    # tuner's own opener: it waits while a starting launch creates the tables.
    storage = open_storage(f"sqlite:///{db}")
    return optuna.load_study(study_name=study, storage=storage).get_trials()


def assert_grid_covered_once(trials: list[optuna.trial.FrozenTrial]) -> None:
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(t.params["l1"] for t in complete) == [8, 16, 32]
    assert all(t.params["l2"] == 8 for t in complete)
    assert sorted(t.system_attrs[GRID_ID] for t in complete) == [0, 1, 2]
    assert all(0.0 <= t.value <= 1.0 for t in complete)


def test_launch_covers_grid_and_prints_ranking(
    tmp_path: Path, studies_dir: Path, synthetic_npz: Path
) -> None:
    def launch_tiny(epochs: int) -> subprocess.CompletedProcess[str]:
        return run_tuner(
            "launch",
            "--variant",
            "tiny",
            "--dataset",
            str(synthetic_npz),
            "--studies",
            str(studies_dir),
            "--epochs",
            str(epochs),
            cwd=tmp_path,
        )

    result = launch_tiny(3)
    assert result.returncode == 0, result.stderr
    db = tmp_path / "tuner.db"  # the default storage, in the working directory
    trials = trials_of(db)
    assert len(trials) == 3
    assert_grid_covered_once(trials)
    assert "Traceback" not in result.stderr
    best = max(trials, key=lambda t: t.value)
    assert f"best tiny: l1={best.params['l1']} l2=8 CV accuracy {best.value:.4f}" in result.stdout
    # The data is learnable: the best point is far above chance.
    assert best.value > 0.3
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    assert study.user_attrs["tuner.epochs"] == 3
    assert study.user_attrs["tuner.dataset"]["source"] == str(synthetic_npz)

    # Relaunching a finished study trains nothing and changes nothing.
    again = launch_tiny(3)
    assert again.returncode == 0, again.stderr
    assert [t.datetime_complete for t in trials_of(db)] == [t.datetime_complete for t in trials]

    # Different epochs against the same study name is refused, with the way out.
    refused = launch_tiny(4)
    assert refused.returncode != 0
    assert "epochs (stored 3, now 4)" in refused.stderr and "--study-name" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_launch_resumes_without_retraining(
    tmp_path: Path,
    studies_dir: Path,
    synthetic_npz: Path,
    signum: int,
    code: int,
    tuner_processes: Callable[..., subprocess.Popen[str]],
) -> None:
    db = tmp_path / "resume.db"
    # One point at a time, so the interrupt finds one point done and one running; the
    # grid trainer's whole-batch hand-back is tests/commands/test_scale_out.py's.
    args = [
        "launch",
        "--trainer",
        "packed",
        "--variant",
        "tiny",
        "--dataset",
        str(synthetic_npz),
        "--studies",
        str(studies_dir),
        "--epochs",
        "120",
        "--storage",
        f"sqlite:///{db}",
    ]
    process = tuner_processes(*args, cwd=tmp_path)

    def one_complete_one_running() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"launch ended early: {process.communicate()}")
        if not db.exists():
            return False
        try:
            states = [t.state for t in trials_of(db)]
        except Exception:  # the study may not exist yet
            return False
        # Running means training: its units are recorded once its claim has returned.
        training = [t for t in trials_of(db) if UNITS in t.user_attrs]
        return TrialState.COMPLETE in states and any(
            t.state == TrialState.RUNNING for t in training
        )

    wait_for(one_complete_one_running)
    before = {t.number: t for t in trials_of(db) if t.state == TrialState.COMPLETE}
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    # One summary line, the count and the way back in it.
    assert (
        stderr.strip()
        .splitlines()[-1]
        .endswith(
            "1 grid point(s) given back; run the same command to resume (finished folds are kept)"
        )
    )
    interrupted = [t for t in trials_of(db) if t.state == TrialState.FAIL]
    assert len(interrupted) == 1 and interrupted[0].system_attrs[INTERRUPTED] is True
    assert not [t for t in trials_of(db) if t.state == TrialState.RUNNING]

    resumed = run_tuner(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    trials = trials_of(db)
    assert_grid_covered_once(trials)
    # Completed points kept their one trial, untouched; the interrupted point ran again.
    for number, trial in before.items():
        assert trials[number].state == TrialState.COMPLETE
        assert trials[number].datetime_complete == trial.datetime_complete
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == 3
    rerun = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE
        and t.system_attrs[GRID_ID] == interrupted[0].system_attrs[GRID_ID]
    ]
    assert len(rerun) == 1 and rerun[0].number > interrupted[0].number


def test_unknown_variant_lists_known_ones(tmp_path: Path) -> None:
    result = run_tuner("launch", "--variant", "nope", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown variant 'nope'" in result.stderr
    for name in ("2layer", "2layer-no-dropout", "3layer-no-bn", "5layer"):
        assert name in result.stderr
    assert "--studies FOLDER" in result.stderr  # where one's own definitions go
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "tuner.db").exists()


def test_unreachable_storage_masks_password(tmp_path: Path, synthetic_npz: Path) -> None:
    url = f"postgresql+psycopg://tuner:pa55word@127.0.0.1:{free_port()}/tuner"
    result = run_tuner(
        "launch",
        "--variant",
        "2layer",
        "--dataset",
        str(synthetic_npz),
        "--storage",
        url,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "pa55word" not in result.stderr + result.stdout
    assert "tuner:***@127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr


def test_storage_from_environment(tmp_path: Path, studies_dir: Path, synthetic_npz: Path):
    db = tmp_path / "from-env.db"
    result = run_tuner(
        "launch",
        "--variant",
        "tiny",
        "--dataset",
        str(synthetic_npz),
        "--subset",
        "150",
        "--studies",
        str(studies_dir),
        "--epochs",
        "1",
        cwd=tmp_path,
        env={"TUNER_STORAGE": f"sqlite:///{db}"},
    )
    assert result.returncode == 0, result.stderr
    assert len(trials_of(db)) == 3
    assert not (tmp_path / "tuner.db").exists()


def test_bad_dataset_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "broken.npz").write_bytes(b"garbage")
    result = run_tuner("launch", "--variant", "2layer", "--dataset", "broken.npz", cwd=tmp_path)
    assert result.returncode == 2
    assert "broken.npz: not a readable .npz dataset" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "tuner.db").exists()  # the data is checked before the storage


def test_variants_lists_every_variant(tmp_path: Path, studies_dir: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_tuner("variants", cwd=tmp_path)
    assert result.returncode == 0
    for name in ("2layer-no-bn", "3layer-no-dropout", "5layer"):
        assert name in result.stdout
    assert "32" in result.stdout and "BatchNorm + Dropout" in result.stdout
    custom = run_tuner("variants", "--studies", str(studies_dir), cwd=elsewhere)
    assert "tiny" in custom.stdout and "5layer" not in custom.stdout
    from_env = run_tuner("variants", cwd=elsewhere, env={"TUNER_STUDIES": str(studies_dir)})
    assert "tiny" in from_env.stdout and "5layer" not in from_env.stdout


def test_unknown_trainer_lists_the_known_ones(tmp_path: Path) -> None:
    result = run_tuner("worker", "--trainer", "bogus", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown --trainer 'bogus'; choose one of grid, packed, fast, keras" in result.stderr
    assert "Traceback" not in result.stderr
    # Compose sets the trainer through the environment: the same check applies.
    from_env = run_tuner("worker", cwd=tmp_path, env={"TUNER_TRAINER": "slow"})
    assert from_env.returncode == 2
    assert "unknown --trainer 'slow'" in from_env.stderr


def test_subset_too_small_for_the_folds_is_refused(
    tmp_path: Path, studies_dir: Path, synthetic_npz: Path
) -> None:
    result = run_tuner(
        "launch",
        "--variant",
        "tiny",
        "--studies",
        str(studies_dir),
        "--dataset",
        str(synthetic_npz),
        "--subset",
        "5",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "(--subset 5): 5 training rows cannot make 3 folds" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "tuner.db").exists()


def test_two_interrupts_in_a_row_still_give_the_whole_batch_back(
    tmp_path: Path,
    studies_dir: Path,
    synthetic_npz: Path,
    tuner_processes: Callable[..., subprocess.Popen[str]],
) -> None:
    """Ctrl-C pressed twice: the second lands while the first gives the batch back."""
    db = tmp_path / "twice.db"
    process = tuner_processes(
        "launch",
        "--variant",
        "tiny",
        "--dataset",
        str(synthetic_npz),
        "--studies",
        str(studies_dir),
        "--epochs",
        "300",
        "--storage",
        f"sqlite:///{db}",
        cwd=tmp_path,
    )

    def batch_training() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"launch ended early: {process.communicate()}")
        try:
            training = [t for t in trials_of(db) if UNITS in t.user_attrs]
        except Exception:  # the study may not exist yet
            return False
        return len(training) == 3 and all(t.state == TrialState.RUNNING for t in training)

    wait_for(batch_training)
    process.send_signal(signal.SIGINT)
    time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    trials = trials_of(db)
    assert [t.state for t in trials] == [TrialState.FAIL] * 3
    assert all(t.system_attrs[INTERRUPTED] is True for t in trials)


def test_an_out_folder_that_cannot_be_written_is_refused_before_any_work(
    tmp_path: Path, studies_dir: Path, synthetic_npz: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    db = tmp_path / "never.db"
    result = run_tuner(
        "launch",
        "--variant",
        "tiny",
        "--studies",
        str(studies_dir),
        "--dataset",
        str(synthetic_npz),
        "--out",
        str(blocker / "reports"),
        "--storage",
        f"sqlite:///{db}",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: --out {blocker / 'reports'}: cannot write in")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not db.exists()  # refused before the storage, the data or any training


def test_tables_piped_to_a_file_do_not_wrap(tmp_path: Path) -> None:
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    result = subprocess.run(
        [sys.executable, "-m", "tuner", "variants"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("│ 2layer ")]
    # One row per variant, its grid on the same line: nothing wrapped at 80 columns.
    assert rows and all("{256,328,512} x {32,64,128}" in row for row in rows)
    assert max(len(line) for line in result.stdout.splitlines()) > 80
