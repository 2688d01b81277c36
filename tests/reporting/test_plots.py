"""The report's figures, drawn from hand-made records: no training, no storage."""

from __future__ import annotations

import matplotlib
import pytest
from matplotlib.figure import Figure

from tuner.reporting import RankedPoint
from tuner.reporting import _plots as plots
from tuner.study import FinalFit, StudyDefinition, TrainingProtocol

FIT = FinalFit(
    trial_number=0,
    units=[16, 8],
    epochs=3,
    history={
        "loss": [1.0, 0.7, 0.5],
        "accuracy": [0.5, 0.7, 0.8],
        "val_loss": [1.1, 0.9, 0.95],
        "val_accuracy": [0.45, 0.6, 0.62],
    },
    test_loss=0.95,
    test_accuracy=0.62,
    train_loss=0.5,
    seconds=1.0,
    model_path="unused.keras",
    weight_quantiles={"dense": [-0.3, -0.1, 0.0, 0.1, 0.3], "output": [-1.0, 0.0, 1.0]},
)


def definition(grid: dict[str, tuple[int, ...]]) -> StudyDefinition:
    return StudyDefinition(
        "v", "", grid, batch_norm=False, dropout=0.0, protocol=TrainingProtocol()
    )


def point(rank: int, units: tuple[int, ...], accuracy: float) -> RankedPoint:
    return RankedPoint(rank, rank, units, accuracy, 0.01, 1.0)


def test_loss_curves_plot_the_final_fit_and_every_fold() -> None:
    folds = [{"loss": [2.0, 1.0], "val_loss": [2.1, 1.5]}] * 3
    figure = plots.loss_curves("v", FIT, folds)
    left, right = figure.axes
    assert [list(line.get_ydata()) for line in left.lines] == [
        FIT.history["loss"],
        FIT.history["val_loss"],
    ]
    assert len(right.lines) == 6
    assert [tick for tick in left.get_xticks() if 1 <= tick <= 3] == [1, 2, 3]  # whole epochs


def test_two_layer_grid_is_a_heatmap_with_blank_missing_points() -> None:
    grid = definition({"l1": (8, 16), "l2": (4, 8)})
    figure = plots.grid_chart("v", grid, [point(1, (16, 4), 0.91), point(2, (8, 8), 0.875)])
    heatmap = figure.axes[0]
    assert sorted(text.get_text() for text in heatmap.texts) == ["0.8750", "0.9100"]
    assert heatmap.get_ylabel() == "l1 units"


def test_deeper_grid_is_a_ranked_strip() -> None:
    grid = definition({"l1": (8,), "l2": (4,), "l3": (2, 4)})
    figure = plots.grid_chart("v", grid, [point(1, (8, 4, 4), 0.9), point(2, (8, 4, 2), 0.8)])
    labels = [label.get_text() for label in figure.axes[0].get_xticklabels()]
    assert labels == ["8-4-4", "8-4-2"]


def test_weight_violins_one_per_layer() -> None:
    figure = plots.weight_violins("v", FIT)
    labels = [label.get_text() for label in figure.axes[0].get_xticklabels()]
    assert labels == ["dense", "output"]


def test_figures_leave_pyplot_and_the_global_style_alone() -> None:
    pyplot = pytest.importorskip("matplotlib.pyplot")
    style = dict(matplotlib.rcParams)
    figure = plots.comparison_chart(
        [{"variant": "a", "cv_accuracy_mean": 0.9, "test_accuracy": 0.88}]
    )
    assert isinstance(figure, Figure)
    assert pyplot.get_fignums() == []  # nothing for an inline backend to show twice
    assert dict(matplotlib.rcParams) == style


def test_figures_render_as_png_for_jupyter(tmp_path) -> None:
    figure = plots.weight_violins("v", FIT)
    data = figure._repr_png_()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    saved = plots.save(figure, tmp_path / "deep" / "weights.png")
    assert saved.read_bytes()[16:24] == data[16:24]  # same width and height
