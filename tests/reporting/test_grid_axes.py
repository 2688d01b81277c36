"""Every surface that shows a study on a grid with axes (issue 21): the ranked grid, status,
the report and its dashboard artifacts, the API's DataFrames and `tuner variants`.

The study is fabricated, not trained: COMPLETE trials with fold records, as workers leave
them, in a real SQLite storage. Trials 0 and 1 differ only in ``dropout``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from rich.console import Console

import tuner
from tuner.data import DatasetSpec
from tuner.reporting import StatusTable, VariantTable, build_report, load_results, study_status
from tuner.reporting import _plots as plots
from tuner.reporting._ranking import ranking_html, render_ranking
from tuner.storages import open_storage
from tuner.study import (
    BUILTIN_STUDIES_DIR,
    FinalFit,
    StudyConfig,
    create_or_resume,
    grid_params,
    load_definitions,
    schema,
)

GRID: dict[str, list[Any]] = {
    "l1": [8, 16],
    "l2": [4],
    "dropout": [0.0, 0.5],
    "learning_rate": [0.001, 0.003],
}
TWINS = ({"l1": 16, "l2": 4, "dropout": 0.0, "learning_rate": 0.001}, {"dropout": 0.5})
"""The two best points: the same widths and learning rate, another dropout rate."""


def fold(index: int, accuracy: float) -> dict[str, object]:
    curves = {"loss": [1.0, 0.8], "accuracy": [0.5, accuracy]}
    history = {**curves, "val_loss": [1.1, 0.9], "val_accuracy": [0.5, accuracy]}
    return {"fold": index, "accuracy": accuracy, "loss": 0.9, "seconds": 1.0, "history": history}


def add_point(study: optuna.Study, params: dict, grid_id: int, scores: list[float]) -> None:
    space = {name: CategoricalDistribution(values) for name, values in GRID.items()}
    mean = sum(scores) / len(scores)
    attrs: dict[str, object] = {
        schema.FOLD_ACCURACIES: scores,
        schema.ACCURACY_STD: 0.01,
        schema.WALL_SECONDS: 2.0,
        **{schema.fold_key(f): fold(f, score) for f, score in enumerate(scores)},
    }
    study.add_trial(
        optuna.trial.create_trial(
            params=params,
            distributions={name: space[name] for name in params},
            value=mean,
            user_attrs=attrs,
            system_attrs={schema.GRID_ID: grid_id},
        )
    )


@pytest.fixture
def axes_study(tmp_path: Path) -> dict:
    """Every point of an 8-point grid complete (l1 x dropout x learning_rate, l2 fixed)."""
    definition = tuner.define_variant("axes", GRID, folds=3)
    url = f"sqlite:///{tmp_path / 'axes.db'}"
    storage = open_storage(url)
    config = StudyConfig("axes", definition, DatasetSpec("synthetic"), "0" * 32, epochs=2)
    study = create_or_resume(storage, config)
    best, twin = TWINS[0], {**TWINS[0], **TWINS[1]}
    points = grid_params(definition)
    ordered = sorted(range(len(points)), key=lambda i: (points[i] != best, points[i] != twin))
    for rank, grid_id in enumerate(ordered):
        base, noise = 0.9 - 0.01 * rank, 0.02 * (-1) ** rank  # the first two are tied
        add_point(study, points[grid_id], grid_id, [base + noise, base, base - noise])
    return {"url": url, "storage": storage, "study": study, "config": config, "root": tmp_path}


def test_define_variant_takes_axes_and_checks_them_like_a_file() -> None:
    definition = tuner.define_variant("axes", GRID)
    assert definition.grid == {"l1": (8, 16), "l2": (4,)}
    assert definition.axes == {"dropout": (0.0, 0.5), "learning_rate": (0.001, 0.003)}
    assert definition.grid_size == 8
    with pytest.raises(tuner.TunerError, match=r"key 'grid\.dropout': must be in \[0, 1\)"):
        tuner.define_variant("bad", {"l1": [8], "dropout": [1.5]})
    with pytest.raises(tuner.TunerError, match=r"key 'grid\.dropout': also set in"):
        tuner.define_variant("twice", {"l1": [8], "dropout": [0.0, 0.5]}, dropout=0.3)
    relu = tuner.define_variant("act", {"l1": [8]}, activation="gelu", weight_decay=0.004)
    assert relu.activation == "gelu" and relu.protocol.weight_decay == 0.004


def test_ranked_grid_has_a_column_per_axis_and_names_points_by_them(axes_study: dict) -> None:
    results = load_results(axes_study["storage"], ["axes"])["axes"]
    first, second = results.points[:2]
    assert first.units == second.units  # only the dropout rate tells them apart
    assert first.label == "16-4 dropout=0.0 learning_rate=0.001"
    assert second.label == "16-4 dropout=0.5 learning_rate=0.001"
    html = results._repr_html_()
    assert "<th>dropout</th><th>learning_rate</th>" in html
    assert "<td>16</td><td>4</td><td>0.0</td><td>0.001</td>" in html
    assert "<td>16</td><td>4</td><td>0.5</td><td>0.001</td>" in html
    assert "axes: dropout {0.0,0.5}, learning_rate {0.001,0.003}" in html
    buffer = io.StringIO()
    definition = axes_study["config"].definition
    render_ranking(Console(file=buffer, width=200), "axes", definition, results.points)
    text = " ".join(buffer.getvalue().split())  # long lines wrap
    assert "best axes: l1=16 l2=4 dropout=0.0 learning_rate=0.001 CV accuracy" in text
    assert "tied with it" in text and "16-4 dropout=0.5 learning_rate=0.001" in text
    assert ranking_html("axes", definition, results.points) == html


def test_frames_have_one_column_per_axis(axes_study: dict) -> None:
    results = tuner.load_results("axes", storage=axes_study["url"])
    frame = results.to_frame()
    assert {"l1", "l2", "dropout", "learning_rate"} <= set(frame.columns)
    first, second = frame.iloc[0], frame.iloc[1]
    assert first["units"] == second["units"] == "16-4"
    assert (first["dropout"], second["dropout"]) == (0.0, 0.5)
    assert len(frame[["l1", "l2", "dropout", "learning_rate"]].drop_duplicates()) == 8
    history = results["axes"].history_frame()
    assert list(history.columns[:5]) == ["study", "trial", "units", "dropout", "learning_rate"]
    assert set(history["dropout"]) == {0.0, 0.5}


def test_status_names_points_with_their_axes(axes_study: dict) -> None:
    status = study_status(axes_study["storage"], axes_study["study"])
    assert status.best_units == "l1=16 l2=4 dropout=0.0 learning_rate=0.001"
    buffer = io.StringIO()
    StatusTable([status]).render(Console(file=buffer, width=200))
    assert "(l1=16 l2=4 dropout=0.0 learning_rate=0.001)" in buffer.getvalue()
    assert tuner.status(axes_study["url"]).to_records()[0]["best_units"] == status.best_units


def test_running_points_and_progress_lines_name_their_axes(tmp_path: Path) -> None:
    from tuner.progress import ProgressDisplay
    from tuner.scheduling import GridScheduler

    url = f"sqlite:///{tmp_path / 'running.db'}"
    storage = open_storage(url)
    definition = tuner.define_variant("axes", GRID)
    config = StudyConfig("axes", definition, DatasetSpec("synthetic"), "0" * 32, epochs=2)
    study = create_or_resume(storage, config)
    claims, _ = GridScheduler(storage, url, study, definition).claim(2)
    running = study_status(storage, study).running
    assert sorted(trial.units for trial in running) == sorted(claim.label for claim in claims)
    assert all(" dropout=" in claim.label and " learning_rate=" in claim.label for claim in claims)
    buffer = io.StringIO()
    display = ProgressDisplay(Console(file=buffer, width=200), live=False)
    display.trial_finished(claims[0].number, claims[0].label, "CV accuracy 0.9", True)
    assert f"[{claims[0].label}]: CV accuracy 0.9" in buffer.getvalue()


def test_heatmap_panels_one_per_combination_of_the_other_axes(axes_study: dict) -> None:
    results = load_results(axes_study["storage"], ["axes"])["axes"]
    definition = results.definition
    rows, columns, facets = plots.heatmap_layout(definition)
    assert (rows[0], columns[0], [name for name, _ in facets]) == (
        "l1",
        "dropout",
        ["learning_rate"],
    )
    figure = results.grid_chart()
    panels = [axes for axes in figure.axes if axes.get_title()]
    assert [axes.get_title() for axes in panels] == ["learning_rate=0.001", "learning_rate=0.003"]
    assert all(axes.get_xlabel() == "dropout" for axes in panels)
    annotated = sorted(text.get_text() for axes in panels for text in axes.texts)
    assert len(annotated) == 8 and "0.9000" in annotated and "0.8900" in annotated


def test_heatmap_beyond_the_panel_limit_shows_the_best_over_the_rest(
    axes_study: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plots, "MAX_PANELS", 1)
    results = load_results(axes_study["storage"], ["axes"])["axes"]
    (heatmap, _colorbar) = results.grid_chart().axes
    assert "best CV accuracy over learning_rate" in heatmap.get_title()
    best: dict[tuple, float] = {}
    for point in results.points:
        cell = (point.units[0], point.axes["dropout"])
        best[cell] = max(best.get(cell, 0.0), point.mean_accuracy)
    shown = sorted(text.get_text() for text in heatmap.texts)
    assert shown == sorted(f"{value:.4f}" for value in best.values())


def test_ablation_study_heatmap_is_four_panels_of_the_widths() -> None:
    definition = load_definitions(BUILTIN_STUDIES_DIR)["2layer-ablation"]
    rows, columns, facets = plots.heatmap_layout(definition)
    assert (rows[0], columns[0]) == ("l1", "l2")
    assert [name for name, _ in facets] == ["batch_norm", "dropout"]


def test_report_and_dashboard_artifacts_show_the_axes(axes_study: dict) -> None:
    study, config, root = axes_study["study"], axes_study["config"], axes_study["root"]
    best = study.best_trial
    fit = FinalFit(
        trial_number=best.number,
        units=[16, 4],
        epochs=2,
        history={
            "loss": [1.0, 0.6],
            "accuracy": [0.6, 0.8],
            "val_loss": [1.0, 0.7],
            "val_accuracy": [0.6, 0.78],
        },
        test_loss=0.7,
        test_accuracy=0.78,
        train_loss=0.6,
        seconds=1.0,
        model_path="",
        weight_quantiles={"dense": [-0.2, 0.0, 0.2], "output": [-1.0, 0.0, 1.0]},
    )
    out, artifacts = root / "report", root / "artifacts"
    report = build_report(
        [(study, config, fit, True)],
        axes_study["storage"],
        artifacts,
        out,
        Console(file=io.StringIO()),
    )
    (row,) = report.rows
    assert row["best_units"] == "16-4"
    assert row["best_axes"] == "dropout=0.0 learning_rate=0.001"
    assert row["regularisation"] == "varies: dropout (best: none)"
    assert "16-4 dropout=0.5 learning_rate=0.001" in row["tied_with_best"].split("; ")
    with open(report.csv_path) as handle:
        assert next(csv.DictReader(handle))["best_axes"] == row["best_axes"]
    markdown = report.markdown_path.read_text()
    assert "| rank | l1 | l2 | dropout | learning\\_rate | CV accuracy |" in markdown
    assert "| 1 | 16 | 4 | 0.0 | 0.001 |" in markdown and "| 2 | 16 | 4 | 0.5 | 0.001 |" in markdown
    assert "axes: dropout {0.0,0.5}, learning\\_rate {0.001,0.003}, 8 grid points" in markdown
    page = report.html_path.read_text()
    assert "<th>dropout</th><th>learning_rate</th>" in page
    assert "<td>16-4 dropout=0.0 learning_rate=0.001</td>" in page  # the best point's cell
    assert "<script" not in page
    with open(out / "axes" / "grid.csv") as handle:
        ranked = list(csv.DictReader(handle))
    assert [(r["units"], r["dropout"]) for r in ranked[:2]] == [("16-4", "0.0"), ("16-4", "0.5")]
    summary = json.loads((out / "axes" / "final_fit.json").read_text())
    assert summary["best_params"] == {"l1": 16, "l2": 4, "dropout": 0.0, "learning_rate": 0.001}
    uploaded = {meta.filename for meta in optuna.artifacts.get_all_artifact_meta(study)}
    assert {"grid.png", "grid.csv", "final_fit.json"} <= uploaded
    assert report.variants["axes"].loss_curves().axes[0].get_title() == (
        "axes: final fit 16-4 dropout=0.0 learning_rate=0.001"
    )


def test_variants_list_the_axes() -> None:
    definitions = load_definitions(BUILTIN_STUDIES_DIR)
    definitions["axes"] = tuner.define_variant("axes", GRID)
    variants = VariantTable(definitions)
    html = variants._repr_html_()
    assert "<th>axes</th>" in html
    assert "<td>batch_norm {true,false} x dropout {0.0,0.5}</td>" in html
    assert "<td>dropout {0.0,0.5} x learning_rate {0.001,0.003}</td>" in html
    frame = variants.to_frame()
    assert frame.loc["2layer-ablation", "axes"] == {
        "batch_norm": [True, False],
        "dropout": [0.0, 0.5],
    }
    assert frame.loc["2layer", "axes"] == {}
    record = {r["variant"]: r for r in variants.to_records()}["axes"]
    assert record["learning_rate"] is None and record["dropout"] is None
    assert any("lr {0.001,0.003}" in line for line in variants.protocols())
    buffer = io.StringIO()
    variants.render(Console(file=buffer, width=220))
    assert "batch_norm {true,false} x dropout {0.0,0.5}" in buffer.getvalue()
