"""Repeated cross-validation and final fits over seeds, end to end: real TensorFlow on
small synthetic data, real SQLite, read back from the storage and the report's files."""

from __future__ import annotations

import csv
import io
import math
import statistics

import numpy as np
import optuna
import pytest
from rich.console import Console
from scipy import stats

import tuner
from tests.helpers import synthetic_images
from tuner.data import repeat_seed
from tuner.study import schema

GRID = {"l1": [8, 16, 32], "l2": [8]}
R, K = 2, 3


def quiet() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200, force_terminal=False), buffer


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("repeats")
    x_train, y_train = synthetic_images(300, seed=1)
    x_test, y_test = synthetic_images(100, seed=2)
    npz = root / "data.npz"
    np.savez(npz, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    variant = tuner.define_variant("tiny", GRID, batch_norm=True, dropout=0.2, batch_size=32)
    storage = f"sqlite:///{root / 'tuner.db'}"
    console, output = quiet()
    results = tuner.launch(
        variant,
        npz,
        storage=storage,
        threads=1,
        epochs=3,
        repeats=R,
        final_seeds=2,
        out=root / "report",
        console=console,
    )
    return {
        "root": root,
        "npz": npz,
        "storage": storage,
        "results": results,
        "output": output.getvalue(),
    }


def stored(launched: dict) -> optuna.Study:
    return optuna.load_study(study_name="tiny", storage=launched["storage"])


def test_every_trial_records_all_r_times_k_folds_and_their_mean(launched: dict) -> None:
    study = stored(launched)
    assert study.user_attrs[schema.REPEATS] == R
    assert study.user_attrs[schema.SPLIT_SEEDS] == [42, repeat_seed(42, 1)]
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        folds = [trial.user_attrs[schema.fold_key(f)] for f in range(R * K)]
        assert schema.fold_key(R * K) not in trial.user_attrs
        assert [fold["fold"] for fold in folds] == list(range(R * K))
        accuracies = trial.user_attrs[schema.FOLD_ACCURACIES]
        assert accuracies == [fold["accuracy"] for fold in folds]
        assert trial.value == pytest.approx(sum(accuracies) / (R * K))
        # Each (repeat, fold) trained from its own initial weights on its own split.
        curves = {tuple(fold["history"]["loss"]) for fold in folds}
        assert len(curves) == R * K
        # The recorded interval: R*k scores, the ratio of one fold of k, R*k - 1 dof.
        j = R * K
        scale = math.sqrt((1 / j + 1 / (K - 1)) * stats.tvar(accuracies))
        expected = stats.t.interval(0.95, j - 1, loc=np.mean(accuracies), scale=scale)
        assert trial.user_attrs[schema.ACCURACY_INTERVAL] == pytest.approx(list(expected))


def test_the_api_and_the_report_show_the_repeats(launched: dict) -> None:
    results = tuner.load_results("tiny", storage=launched["storage"])
    assert results["tiny"].config.repeats == R
    assert "2x3-fold CV" in repr(results["tiny"])
    frame = results["tiny"].to_frame()
    assert {f"fold_{f}_accuracy" for f in range(R * K)} <= set(frame.columns)
    report = launched["results"].report
    (row,) = report.rows
    assert (row["cv_repeats"], row["cv_folds"]) == (R, K)
    markdown = report.markdown_path.read_text()
    assert "3 grid points, 2x3-fold CV, 3 epochs." in markdown
    status = tuner.status(storage=launched["storage"])
    assert status.to_records()[0]["cv_repeats"] == R
    assert status[0].grid_cell == "3 (2x3-fold CV)"


def test_a_resume_with_other_repeats_is_refused_in_one_line(launched: dict) -> None:
    variant = tuner.define_variant("tiny", GRID, batch_norm=True, dropout=0.2, batch_size=32)
    with pytest.raises(tuner.TunerError) as refused:
        tuner.launch(variant, launched["npz"], storage=launched["storage"], epochs=3, report=False)
    assert "CV repeats (stored 2, now 1)" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_every_seed_fit_is_stored_and_the_table_shows_mean_and_spread(launched: dict) -> None:
    from tuner.reporting import judge_runs

    fit = stored(launched).user_attrs[schema.FINAL_FIT]
    runs = fit["seed_fits"]
    assert len(runs) == 2
    assert runs[0]["seed"] == 42 and runs[1]["seed"] != 42
    # The first seed is the fit of before: its numbers are the record's top level.
    assert runs[0]["test_accuracy"] == fit["test_accuracy"]
    assert runs[0]["history"] == fit["history"]
    assert runs[0]["history"]["loss"] != runs[1]["history"]["loss"]
    accuracies = [run["test_accuracy"] for run in runs]
    losses = [run["test_loss"] for run in runs]
    with open(launched["root"] / "report" / "comparison.csv") as handle:
        (row,) = list(csv.DictReader(handle))
    assert float(row["test_accuracy"]) == pytest.approx(statistics.fmean(accuracies))
    assert float(row["test_accuracy_std"]) == pytest.approx(statistics.stdev(accuracies))
    assert float(row["test_loss"]) == pytest.approx(statistics.fmean(losses))
    assert float(row["test_loss_std"]) == pytest.approx(statistics.stdev(losses))
    assert row["final_seeds"] == "2"
    verdict = judge_runs([(r["history"]["loss"], r["history"]["val_loss"]) for r in runs])
    assert (row["verdict"], row["verdict_reason"]) == (verdict.word, verdict.reason)
    assert "mean curves of 2 fits" in row["verdict_reason"]
    shown = f"{statistics.fmean(accuracies):.4f} ± {statistics.stdev(accuracies):.4f} (2 fits)"
    assert shown in (launched["root"] / "report" / "report.md").read_text()


def test_more_seeds_train_only_the_missing_ones_and_fewer_reuse_the_first(
    launched: dict,
) -> None:
    before = stored(launched).user_attrs[schema.FINAL_FIT]["seed_fits"]
    console, output = quiet()
    three = tuner.report(
        storage=launched["storage"], out=launched["root"] / "r3", final_seeds=3, console=console
    )
    assert three is not None
    after = stored(launched).user_attrs[schema.FINAL_FIT]["seed_fits"]
    assert after[:2] == before and len(after) == 3
    assert "seeds 3-3 of 3" in output.getvalue()
    console, output = quiet()
    one = tuner.report(storage=launched["storage"], out=launched["root"] / "r1", console=console)
    assert one is not None
    assert "final fit" not in output.getvalue()  # nothing trained
    (row,) = one.rows
    assert row["test_accuracy"] == before[0]["test_accuracy"]
    assert row["final_seeds"] == 1 and row["test_accuracy_std"] is None
    assert "mean curves" not in row["verdict_reason"]
    assert len(stored(launched).user_attrs[schema.FINAL_FIT]["seed_fits"]) == 3  # kept
