"""The report's pictures, drawn from recorded data only, as matplotlib Figures.

The report saves them as PNG (:func:`save`); a notebook shows the very same Figures
inline. They are built without pyplot: no backend is chosen or changed, nothing is
left open in pyplot's figure list (which Jupyter's inline backend would show a second
time), and the seaborn theme applies to these figures only, not to the user's own.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from tuner.reporting._ranking import RankedPoint
from tuner.study import FinalFit, StudyDefinition, shown_value

DPI = 110
MAX_PANELS = 12
"""A grid with axes gets one heatmap panel per combination of its other dimensions up to
this many; beyond, one heatmap whose cells are the best over those combinations (the
ranked grid lists every point)."""


class ReportFigure(Figure):
    """A matplotlib Figure that shows itself inline in Jupyter, as the report's PNG.

    Without pyplot, IPython would print a plain Figure as ``<Figure size ...>`` unless
    the user had run ``%matplotlib inline``; the PNG representation makes it render in
    any Jupyter front end, and once (it is never in pyplot's list of open figures).
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=DPI)
        return buffer.getvalue()


@contextlib.contextmanager
def _theme() -> Iterator[None]:
    # Styles apply when artists are created, so drawing inside the context is enough.
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook"):
        yield


def _figure(width: float, height: float) -> ReportFigure:
    return ReportFigure(figsize=(width, height), layout="tight")


def save(figure: Figure, path: Path) -> Path:
    """Write the figure as a PNG (parent folders created) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    return path


def loss_curves(
    name: str,
    fit: FinalFit,
    fold_histories: Sequence[dict[str, list[float]]],
    label: str | None = None,
) -> ReportFigure:
    """Final fit: train vs test loss per epoch; beside it, the winner's CV folds.

    Args:
        name: The study's name, for the titles.
        fit: The winner's final fit (its per-epoch train and test loss).
        fold_histories: The winner's per-fold curves from cross-validation.
        label: How the winner is named in the title (default: its widths); on a grid
            with axes, its name with the axes' values.

    Returns:
        A figure of two panels sharing the loss axis.
    """
    with _theme():
        figure = _figure(11, 4.2)
        left, right = figure.subplots(1, 2, sharey=True)
        epochs = np.arange(1, len(fit.history["loss"]) + 1)
        left.plot(epochs, fit.history["loss"], marker="o", label="train loss")
        left.plot(epochs, fit.history["val_loss"], marker="o", label="test (validation) loss")
        shown = label if label is not None else str(tuple(fit.units))
        left.set(title=f"{name}: final fit {shown}", xlabel="epoch", ylabel="loss")
        left.legend()
        palette = sns.color_palette(n_colors=max(1, len(fold_histories)))
        for index, history in enumerate(fold_histories):
            fold_epochs = np.arange(1, len(history["loss"]) + 1)
            right.plot(
                fold_epochs, history["loss"], color=palette[index], label=f"fold {index} train"
            )
            right.plot(
                fold_epochs,
                history["val_loss"],
                color=palette[index],
                linestyle="--",
                label=f"fold {index} validation",
            )
        right.set(title=f"{name}: cross-validation folds of the winner", xlabel="epoch")
        right.legend(fontsize="small")
        for axes in (left, right):
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


def weight_violins(name: str, fit: FinalFit) -> ReportFigure:
    """Distribution of every Dense layer's trained kernel weights, one violin per layer.

    Args:
        name: The study's name, for the title.
        fit: The final fit, whose per-layer weight quantiles are drawn.

    Returns:
        A figure with one violin per Dense layer, output layer included.
    """
    frame = pd.DataFrame(
        [(layer, value) for layer, values in fit.weight_quantiles.items() for value in values],
        columns=["layer", "weight"],
    )
    with _theme():
        figure = _figure(max(6, 1.6 * len(fit.weight_quantiles)), 4.2)
        axes = figure.subplots()
        sns.violinplot(
            data=frame,
            x="layer",
            y="weight",
            hue="layer",
            ax=axes,
            cut=0,
            inner="quartile",
            legend=False,
        )
        axes.set(title=f"{name}: trained weights per layer", xlabel="", ylabel="weight")
    return figure


def grid_chart(name: str, definition: StudyDefinition, points: list[RankedPoint]) -> ReportFigure:
    """CV accuracy over the grid: a heatmap for two layers, a ranked strip for more.

    On a grid with axes (``dropout = [0.0, 0.5]`` ...), a heatmap over two of its
    dimensions (:func:`heatmap_layout`: l1 and l2 where both vary) with one panel per
    combination of the other varying dimensions (small multiples, one colour scale), or
    beyond :data:`MAX_PANELS` panels one heatmap of the best over them.

    Args:
        name: The study's name, for the title.
        definition: The study's definition (its grid gives the heatmap's axes).
        points: The evaluated grid points; missing ones stay blank in the heatmap.

    Returns:
        The heatmap (two hidden layers, or any grid with axes) or the ranked strip with
        ± std bars.
    """
    metric = definition.task.metric_label
    with _theme():
        if definition.axes:
            return _faceted(name, definition, points)
        if definition.n_layers == 2:
            return _heatmap(name, definition, points)
        figure = _figure(max(7, 0.38 * len(points)), 4.5)
        axes: Axes = figure.subplots()
        labels = [point.label for point in points]
        for tied, color in ((True, "tab:orange"), (False, "tab:blue")):
            shown = [i for i, p in enumerate(points) if p.tied_with_best == tied]
            if not shown:
                continue
            axes.errorbar(
                shown,
                [points[i].mean_accuracy for i in shown],
                yerr=[_half_width(points[i]) for i in shown],
                fmt="o",
                capsize=3,
                color=color,
                label="tied with the best" if tied else "significantly worse",
            )
        axes.legend(loc="lower left", fontsize="small")
        axes.set_xticks(range(len(points)), labels, rotation=70, fontsize="small")
        axes.set(
            title=f"{name}: grid points ranked by CV {metric} (95% corrected interval)",
            xlabel="units per layer",
            ylabel=f"mean CV {metric}",
        )
    return figure


def _half_width(point: RankedPoint) -> float:
    return point.interval.half_width if point.interval else point.std_accuracy


def _heatmap(name: str, definition: StudyDefinition, points: list[RankedPoint]) -> ReportFigure:
    l1, l2 = definition.grid["l1"], definition.grid["l2"]
    table = np.full((len(l1), len(l2)), np.nan)
    for point in points:
        table[l1.index(point.units[0]), l2.index(point.units[1])] = point.mean_accuracy
    figure = _figure(6, 4.5)
    axes = figure.subplots()
    sns.heatmap(
        pd.DataFrame(table, index=list(l1), columns=list(l2)),
        annot=True,
        fmt=".4f",
        cmap="viridis",
        ax=axes,
        cbar_kws={"label": f"mean CV {definition.task.metric_label}"},
    )
    # The best and the points tied with it (not significantly worse) are outlined.
    for point in points:
        if point.tied_with_best:
            row, column = l1.index(point.units[0]), l2.index(point.units[1])
            edge = "white" if point.rank == 1 else "orange"
            axes.add_patch(Rectangle((column, row), 1, 1, fill=False, edgecolor=edge, lw=3))
    axes.set(
        title=f"{name}: CV {definition.task.metric_label} over the grid\n"
        "(white: best; orange: tied with it)",
        xlabel="l2 units",
        ylabel="l1 units",
    )
    return figure


Dimension = tuple[str, tuple[Any, ...]]


def heatmap_layout(definition: StudyDefinition) -> tuple[Dimension, Dimension, list[Dimension]]:
    """The heatmap's rows, its columns and the panels of a grid with axes.

    The grid's dimensions are its widths then its axes, in order; the first two that
    take more than one value are the heatmap's rows and columns (l1 and l2 when both
    vary; else a width and an axis, or two axes), padded with single-valued ones; every
    other dimension that varies makes panels (one per combination of its values).
    """
    dimensions = [*definition.grid.items(), *definition.axes.items()]
    varying = [d for d in dimensions if len(d[1]) > 1]
    rows, columns = (varying + [d for d in dimensions if len(d[1]) == 1])[:2]
    return rows, columns, [d for d in varying if d not in (rows, columns)]


def _dimension_label(name: str) -> str:
    return f"{name} units" if name.startswith("l") and name[1:].isdigit() else name


def _panels(count: int) -> tuple[int, int]:
    columns = count if count <= 3 else (2 if count == 4 else 3)
    return math.ceil(count / columns), columns


def _faceted(name: str, definition: StudyDefinition, points: list[RankedPoint]) -> ReportFigure:
    metric = definition.task.metric_label
    (row_name, row_values), (column_name, column_values), facets = heatmap_layout(definition)
    combinations = list(itertools.product(*(values for _, values in facets)))
    layers = definition.layer_names
    placed = [
        (
            point,
            params,
            row_values.index(params[row_name]),
            column_values.index(params[column_name]),
            tuple(params[facet] for facet, _ in facets),
        )
        for point in points
        for params in [point.params(layers)]
    ]
    accuracies = [point.mean_accuracy for point in points]
    low, high = (min(accuracies), max(accuracies)) if accuracies else (0.0, 1.0)
    index = [shown_value(value) for value in row_values]
    columns = [shown_value(value) for value in column_values]
    labels = {"xlabel": _dimension_label(column_name), "ylabel": _dimension_label(row_name)}
    caption = "(white: best; orange: tied with it)"
    if len(combinations) > MAX_PANELS:
        # Too many panels to read: each cell holds the best point over the other dimensions.
        table = np.full((len(row_values), len(column_values)), np.nan)
        chosen: dict[tuple[int, int], RankedPoint] = {}
        for point, _, row, column, _ in placed:
            if (row, column) not in chosen or point.rank < chosen[(row, column)].rank:
                chosen[(row, column)] = point
                table[row, column] = point.mean_accuracy
        figure = _figure(max(7.5, 0.9 * len(columns) + 3), max(4.5, 0.5 * len(index) + 2))
        axes = figure.subplots()
        sns.heatmap(
            pd.DataFrame(table, index=index, columns=columns),
            annot=True,
            fmt=".4f",
            cmap="viridis",
            ax=axes,
            cbar_kws={"label": f"best mean CV {metric}"},
        )
        _outline(axes, [(row, column, p) for (row, column), p in chosen.items()])
        over = ", ".join(facet for facet, _ in facets)
        axes.set(
            title=f"{name}: best CV {metric} over {over}\n({len(combinations)} combinations, "
            f"each point in the ranked grid; white: best; orange: tied with it)",
            **labels,
        )
        return figure
    rows, across = _panels(len(combinations))
    figure = ReportFigure(figsize=(5.2 * across + 1.2, 4.2 * rows + 0.8), layout="constrained")
    grid = figure.subplots(rows, across, squeeze=False)
    for panel, combination in zip(grid.flat, combinations, strict=False):
        table = np.full((len(row_values), len(column_values)), np.nan)
        mine = [(row, column, p) for p, _, row, column, at in placed if at == combination]
        for row, column, point in mine:
            table[row, column] = point.mean_accuracy
        sns.heatmap(
            pd.DataFrame(table, index=index, columns=columns),
            annot=True,
            fmt=".4f",
            cmap="viridis",
            vmin=low,
            vmax=high,
            cbar=False,
            ax=panel,
        )
        _outline(panel, mine)
        title = " ".join(
            f"{facet}={shown_value(value)}"
            for (facet, _), value in zip(facets, combination, strict=True)
        )
        panel.set(title=title, **labels)
    for unused in list(grid.flat)[len(combinations) :]:
        unused.set_visible(False)
    figure.colorbar(
        grid.flat[0].collections[0],
        ax=list(grid.flat[: len(combinations)]),
        label=f"mean CV {metric}",
    )
    figure.suptitle(f"{name}: CV {metric} over the grid {caption}")
    return figure


def _outline(axes: Axes, cells: Sequence[tuple[int, int, RankedPoint]]) -> None:
    """The best and the points tied with it (not significantly worse), outlined."""
    for row, column, point in cells:
        if point.tied_with_best:
            edge = "white" if point.rank == 1 else "orange"
            axes.add_patch(Rectangle((column, row), 1, 1, fill=False, edgecolor=edge, lw=3))


def _metric(row: dict[str, object]) -> str:
    """A comparison row's score name (rows from before tasks name none: accuracy)."""
    return str(row.get("metric", "accuracy"))


def comparison_chart(rows: Sequence[dict[str, object]]) -> ReportFigure:
    """Every variant's best CV score beside its test score (accuracy, or R²).

    Args:
        rows: The report's comparison rows (``variant``, ``metric``, ``cv_accuracy_mean``,
            ``test_accuracy``).

    Returns:
        A grouped bar chart, one group per variant.
    """
    frame = pd.DataFrame(
        [
            (row["variant"], f"CV {row.get('metric', 'accuracy')}", row["cv_accuracy_mean"])
            for row in rows
        ]
        + [
            (row["variant"], f"test {row.get('metric', 'accuracy')}", row["test_accuracy"])
            for row in rows
        ],
        columns=["variant", "measure", "accuracy"],
    )
    metrics = sorted({_metric(row) for row in rows})
    with _theme():
        figure = _figure(max(6, 1.4 * len(rows)), 4.5)
        axes = figure.subplots()
        sns.barplot(data=frame, x="variant", y="accuracy", hue="measure", ax=axes)
        low = float(frame["accuracy"].min())
        # R² can be negative (worse than predicting the mean): then the axis shows it.
        bottom = low - 0.05 if low < 0 else max(0.0, low - 0.05)
        axes.set_ylim(bottom, min(1.0, float(frame["accuracy"].max()) + 0.02))
        axes.set(title="Best grid point of each variant", xlabel="", ylabel=" / ".join(metrics))
        axes.tick_params(axis="x", rotation=20)
    return figure
