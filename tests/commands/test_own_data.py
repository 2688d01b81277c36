"""Users' own tables end to end: the real `tuner` command on CSV and Parquet files of real
data that ships inside scikit-learn (wine: 3 named classes; diabetes: a regression)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import optuna
import pytest
from sklearn.datasets import load_diabetes, load_wine

from tests.helpers import run_tuner
from tuner.storages import open_storage
from tuner.study import schema

pytestmark = pytest.mark.slow


def study_of(db: Path, name: str = "tiny") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(f"sqlite:///{db}"))


def test_a_csv_with_named_classes_end_to_end(
    tmp_path: Path, studies_dir: Path, wine_csv: Path
) -> None:
    launch = ("launch", "--variant", "tiny", "--studies", str(studies_dir), "--epochs", "30")
    result = run_tuner(*launch, "--dataset", str(wine_csv), "--target", "target", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "classification, 3 classes (barbera, barolo, grignolino); 13 inputs" in result.stdout
    study = study_of(tmp_path / "tuner.db")
    task = study.user_attrs[schema.TASK]
    assert task["classes"] == ["barbera", "barolo", "grignolino"] and task["target"] == "target"
    assert study.user_attrs[schema.DATASET]["target"] == "target"
    assert study.metric_names == ["CV accuracy"]
    # Standardised features learn wine in a few epochs: far above chance (1/3).
    assert study.best_value > 0.8
    with open(tmp_path / "reports" / "comparison.csv") as table:
        rows = list(csv.DictReader(table))
    assert rows[0]["task"] == "classification" and rows[0]["metric"] == "accuracy"
    assert float(rows[0]["test_accuracy"]) > 0.7
    # A worker given other data is refused before it trains: the fingerprint differs.
    changed = wine_csv.read_text().replace("barolo", "baROLO", 1)
    wine_csv.write_text(changed)
    worker = run_tuner("worker", "--study-name", "tiny", cwd=tmp_path)
    assert worker.returncode == 2 and "differs from the data the study was created" in (
        worker.stderr
    )
    # tuner data shows what each column became, without a storage.
    shown = run_tuner("data", "--dataset", str(wine_csv), "--target", "target", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "proline: numeric feature, standardised per fold" in shown.stdout
    assert "class barolo: " in shown.stdout


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_parquet_regression_end_to_end(tmp_path: Path, studies_dir: Path, backend: str) -> None:
    data = tmp_path / "diabetes.parquet"
    load_diabetes(as_frame=True).frame.to_parquet(data)
    result = run_tuner(
        "launch",
        "--variant",
        "tiny",
        "--studies",
        str(studies_dir),
        "--epochs",
        "15",
        "--dataset",
        str(data),
        "--target",
        "target",
        "--task",
        "regression",
        "--backend",
        backend,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "CV R² " in result.stdout and "CV accuracy" not in result.stdout
    study = study_of(tmp_path / "tuner.db")
    assert study.metric_names == ["CV R²"]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 3
    # R² of a learnt model: above predicting the mean (0), below perfect (1).
    assert all(-1.0 < t.value < 1.0 for t in complete) and study.best_value > 0.1
    for trial in complete:
        folds = [trial.user_attrs[schema.fold_key(f)]["accuracy"] for f in range(3)]
        assert trial.value == pytest.approx(float(np.mean(folds)))
    report = (tmp_path / "reports" / "report.md").read_text()
    assert "| CV R² |" in report and "regression of target; 10 inputs" in report
    record = json.loads((tmp_path / "reports" / "comparison.json").read_text())[0]
    assert record["task"] == "regression" and record["metric"] == "R²"


def test_the_python_api_takes_a_dataframe(tmp_path: Path, studies_dir: Path, monkeypatch) -> None:
    import tuner

    monkeypatch.chdir(tmp_path)
    frame = load_wine(as_frame=True).frame
    results = tuner.launch(
        "tiny", frame, target="target", studies_dir=studies_dir, epochs=4, report=False
    )
    table = results["tiny"].to_frame()
    assert len(table) == 3 and table["cv_accuracy_mean"].between(0, 1).all()
    written = list((tmp_path / "tuner-data").glob("frame-*.parquet"))
    assert len(written) == 1
    assert study_of(tmp_path / "tuner.db").user_attrs[schema.DATASET]["source"] == str(written[0])
