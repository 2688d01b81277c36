"""The Python API end to end: real TensorFlow on small synthetic data, real SQLite.

One tiny study is launched once (module fixture); the tests read it back through every
public entry point and compare what they get with what Optuna itself stored.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from matplotlib.figure import Figure
from rich.console import Console

import tuner
from tests.helpers import run_tuner, synthetic_images, tuner_environment
from tuner.reporting._verdict import WORDS
from tuner.study import load_definition, schema

GRID = {"l1": [8, 16], "l2": [8]}


def quiet() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200, force_terminal=False), buffer


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("api")
    x_train, y_train = synthetic_images(300, seed=1)
    x_test, y_test = synthetic_images(100, seed=2)
    npz = root / "data.npz"
    np.savez(npz, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    variant = tuner.define_variant(
        "tiny", GRID, batch_norm=True, dropout=0.2, epochs=2, batch_size=32
    )
    storage = f"sqlite:///{root / 'tuner.db'}"
    console, output = quiet()
    results = tuner.launch(
        variant, npz, storage=storage, threads=1, out=root / "report", console=console
    )
    return {
        "root": root,
        "npz": npz,
        "storage": storage,
        "results": results,
        "output": output.getvalue(),
    }


def stored_study(launched: dict) -> optuna.Study:
    return optuna.load_study(study_name="tiny", storage=launched["storage"])


def test_launch_returns_every_grid_point_with_the_stored_numbers(launched: dict) -> None:
    results = launched["results"]
    assert list(results) == ["tiny"]
    frame = results["tiny"].to_frame()
    assert len(frame) == 2 and results["tiny"].complete
    assert list(frame["rank"]) == [1, 2]
    assert frame["cv_accuracy_mean"].is_monotonic_decreasing
    trials = {t.number: t for t in stored_study(launched).trials}
    for row in frame.to_dict("records"):
        trial = trials[row["trial"]]
        assert (row["l1"], row["l2"]) == (trial.params["l1"], trial.params["l2"])
        assert row["cv_accuracy_mean"] == trial.value
        folds = [row[f"fold_{k}_accuracy"] for k in range(3)]
        assert folds == trial.user_attrs[schema.FOLD_ACCURACIES]
        assert [row[f"fold_{k}_loss"] for k in range(3)] == trial.user_attrs[schema.FOLD_LOSSES]
        assert row["cv_accuracy_mean"] == pytest.approx(np.mean(folds))
        assert row["cv_accuracy_std"] == trial.user_attrs[schema.ACCURACY_STD]


def test_records_are_plain_json_and_match_the_frame(launched: dict) -> None:
    results = launched["results"]
    records = results.to_records()
    assert json.loads(json.dumps(records)) == records
    assert records == results.to_frame().to_dict("records")


def test_history_frame_holds_every_epoch_of_every_fold(launched: dict) -> None:
    result = launched["results"]["tiny"]
    history = result.history_frame()
    assert len(history) == 2 * 3 * 2  # points x folds x epochs
    trial = stored_study(launched).trials[result.points[0].trial_number]
    fold_1 = history[(history["trial"] == trial.number) & (history["fold"] == 1)]
    assert list(fold_1["epoch"]) == [1, 2]
    assert list(fold_1["val_loss"]) == trial.user_attrs[schema.fold_key(1)]["history"]["val_loss"]


def test_results_render_the_ranked_grid_as_html(launched: dict) -> None:
    result = launched["results"]["tiny"]
    html = result._repr_html_()
    assert "<caption>tiny: 2/2 grid points (BatchNorm + Dropout)</caption>" in html
    best = result.best
    assert best is not None
    assert f"<td>{best.mean_accuracy:.4f} ± {best.std_accuracy:.4f}</td>" in html
    assert html.count("<tr>") == 3  # header and two grid points
    assert launched["results"]._repr_html_() == html
    # The terminal got the same ranking from launch.
    assert (
        f"best tiny: l1={best.units[0]} l2=8 CV accuracy {best.mean_accuracy:.4f}"
        in (launched["output"])
    )


def test_launch_report_numbers_match_the_files_and_the_storage(launched: dict) -> None:
    report = launched["results"].report
    assert report is not None and report.out == launched["root"] / "report"
    assert report.rows == json.loads(report.json_path.read_text())
    fit = stored_study(launched).user_attrs[schema.FINAL_FIT]
    frame = report.to_frame()
    assert frame.loc["tiny", "test_accuracy"] == fit["test_accuracy"]
    assert frame.loc["tiny", "verdict"] in set(WORDS)
    html = report._repr_html_()
    assert "<th>verdict</th>" in html and f"<b>tiny</b>: {frame.loc['tiny', 'verdict']}" in html
    assert set(report.pictures["tiny"]) == {"loss curves", "weights", "grid"}
    for path in [*report.pictures["tiny"].values(), report.comparison_png, report.html_path]:
        assert path.is_file()


def test_figures_are_the_ones_the_report_saved(launched: dict) -> None:
    report = launched["results"].report
    variant = report.variants["tiny"]
    figures = {
        "loss curves": variant.loss_curves(),
        "weights": variant.weight_violins(),
        "grid": variant.grid_chart(),
    }
    for title, figure in figures.items():
        assert isinstance(figure, Figure)
        saved = report.pictures["tiny"][title].read_bytes()
        assert png_size(figure._repr_png_()) == png_size(saved), title
    left, right = figures["loss curves"].axes
    assert list(left.lines[0].get_ydata()) == variant.fit.history["loss"]
    assert len(right.lines) == 2 * 3  # train and validation of each fold
    assert png_size(report.comparison_chart()._repr_png_()) == png_size(
        report.comparison_png.read_bytes()
    )
    grid = launched["results"]["tiny"].grid_chart()
    annotations = {text.get_text() for text in grid.axes[0].texts}
    assert annotations == {f"{p.mean_accuracy:.4f}" for p in variant.points}


def test_load_results_reads_back_what_launch_returned(launched: dict) -> None:
    loaded = tuner.load_results(storage=launched["storage"])
    assert loaded.to_records() == launched["results"].to_records()
    assert tuner.load_results("tiny", storage=launched["storage"]).to_records() == (
        loaded.to_records()
    )


def test_status_of_a_complete_study(launched: dict) -> None:
    table = tuner.status(launched["storage"])
    (record,) = table.to_records()
    assert record["study"] == "tiny" and record["complete"] == 2 and record["waiting"] == 0
    best = launched["results"]["tiny"].best
    assert record["best_value"] == best.mean_accuracy
    assert "<caption>tuner studies</caption>" in table._repr_html_()


def test_second_report_reuses_the_final_fit_without_loading_tensorflow(launched: dict) -> None:
    before = stored_study(launched).user_attrs[schema.FINAL_FIT]
    out = str(launched["root"] / "again")
    code = (
        "import sys, tuner\n"
        f"report = tuner.report(storage={launched['storage']!r}, out={out!r})\n"
        "print(report.rows[0]['test_accuracy'])\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=tuner_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    *_, accuracy, loaded = result.stdout.strip().splitlines()
    assert float(accuracy) == before["test_accuracy"]
    assert loaded == "False False"
    assert "final fit of trial" not in result.stdout
    assert stored_study(launched).user_attrs[schema.FINAL_FIT] == before


def test_api_errors_are_the_lines_the_cli_prints(launched: dict) -> None:
    with pytest.raises(tuner.TunerError) as raised:
        tuner.report("nope", storage=launched["storage"])
    assert "no study named 'nope'" in str(raised.value) and "tiny" in str(raised.value)
    cli = run_tuner(
        "report", "--variant", "nope", "--storage", launched["storage"], cwd=launched["root"]
    )
    assert cli.returncode == 2
    assert cli.stderr.strip() == f"error: {raised.value}"


def test_relaunch_under_other_settings_is_refused(launched: dict) -> None:
    variant = tuner.define_variant(
        "tiny", GRID, batch_norm=True, dropout=0.2, epochs=2, batch_size=32
    )
    console, _ = quiet()
    with pytest.raises(tuner.TunerError, match=r"epochs \(stored 2, now 3\)"):
        tuner.launch(
            variant, launched["npz"], epochs=3, storage=launched["storage"], console=console
        )


def test_launch_checks_variants_and_data_before_creating_a_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(tuner.TunerError, match=r"unknown variant 'nope'; known variants: .*2layer"):
        tuner.launch("nope")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(tuner.TunerError, match=r"broken\.npz: not a readable \.npz dataset"):
        tuner.launch(tuner.define_variant("x", [[8]]), "broken.npz")
    one = tuner.define_variant("same", [[8]])
    other = tuner.define_variant("same", [[16]])
    with pytest.raises(tuner.TunerError, match="two different variants are named 'same'"):
        tuner.launch([one, other])
    with pytest.raises(tuner.TunerError, match="unknown --trainer 'bogus'"):
        tuner.launch(one, trainer="bogus")
    assert list(tmp_path.iterdir()) == [tmp_path / "broken.npz"]


def test_reading_a_missing_storage_is_refused(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'missing.db'}"
    with pytest.raises(tuner.TunerError, match="no such database file"):
        tuner.load_results(storage=missing)
    with pytest.raises(tuner.TunerError, match="no such database file"):
        tuner.status(missing)
    assert not (tmp_path / "missing.db").exists()


def test_status_of_a_storage_without_tuner_studies(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'other.db'}"
    optuna.create_study(storage=storage, study_name="not-tuner")
    table = tuner.status(storage)
    assert len(table) == 0
    console, output = quiet()
    table.render(console)
    assert output.getvalue() == "no tuner studies in this storage yet\n"
    with pytest.raises(tuner.TunerError, match="holds no tuner studies"):
        tuner.load_results(storage=storage)


def test_defined_variant_equals_the_same_definition_file(tmp_path: Path) -> None:
    path = tmp_path / "wide.toml"
    path.write_text(
        'description = "d"\n[model]\nbatch_norm = true\ndropout = 0.3\n'
        "[grid]\nl1 = [512, 1024]\nl2 = [64]\n[protocol]\nepochs = 4\nbatch_size = 64\n"
    )
    defined = tuner.define_variant(
        "wide",
        [[512, 1024], (64,)],
        description="d",
        batch_norm=True,
        dropout=0.3,
        epochs=4,
        batch_size=64,
    )
    assert defined == load_definition(path)
    assert defined.fingerprint() == load_definition(path).fingerprint()


@pytest.mark.parametrize(
    ("grid", "options", "message"),
    [
        ({"l1": [0]}, {}, "v1.5: key 'grid.l1': units must be positive integers, got 0"),
        ({"l1": [8], "l3": [8]}, {}, "v1.5: key 'grid': layers must be l1..l2 without gaps"),
        ({"l1": 8}, {}, "v1.5: key 'grid.l1': must be a non-empty list of unit counts"),
        ({"l1": [8]}, {"dropout": 1.0}, "v1.5: key 'model.dropout': must be in [0, 1), got 1.0"),
        ({"l1": [8]}, {"optimizer": "lbfgs"}, "v1.5: key 'protocol.optimizer': must be one of"),
        ({"l1": [8]}, {"folds": 1}, "v1.5: key 'protocol.folds': cross-validation needs"),
    ],
)
def test_define_variant_names_the_variant_key_and_reason(
    grid: dict, options: dict, message: str
) -> None:
    with pytest.raises(tuner.TunerError) as raised:
        tuner.define_variant("v1.5", grid, **options)
    assert str(raised.value).startswith(message)


def test_define_variant_refuses_a_name_that_is_no_file_stem() -> None:
    with pytest.raises(tuner.TunerError, match="variant name 'a/b'"):
        tuner.define_variant("a/b", [[8]])


def test_variants_table(studies_dir: Path) -> None:
    table = tuner.variants(studies_dir)
    assert list(table) == ["tiny"]
    assert table["tiny"].grid == {"l1": (8, 16, 32), "l2": (8,)}
    frame = table.to_frame()
    assert frame.loc["tiny", "grid_points"] == 3 and frame.loc["tiny", "epochs"] == 2
    html = table._repr_html_()
    assert "<td>{8,16,32} x {8}</td>" in html
    assert "protocol (all variants): 2 epochs, batch 32, 3-fold CV, adam lr 0.001" in html
