"""The report's pictures, drawn from recorded data only (matplotlib + seaborn, PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from tuner.reporting._ranking import RankedPoint
from tuner.study import FinalFit, StudyDefinition

DPI = 110
sns.set_theme(style="whitegrid", context="notebook")


def _save(figure: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def loss_curves(
    name: str, fit: FinalFit, fold_histories: Sequence[dict[str, list[float]]], path: Path
) -> Path:
    """Final fit: train vs test loss per epoch; beside it, the winner's CV folds."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    epochs = np.arange(1, len(fit.history["loss"]) + 1)
    left.plot(epochs, fit.history["loss"], marker="o", label="train loss")
    left.plot(epochs, fit.history["val_loss"], marker="o", label="test (validation) loss")
    left.set(title=f"{name}: final fit {tuple(fit.units)}", xlabel="epoch", ylabel="loss")
    left.legend()
    palette = sns.color_palette(n_colors=max(1, len(fold_histories)))
    for index, history in enumerate(fold_histories):
        fold_epochs = np.arange(1, len(history["loss"]) + 1)
        right.plot(fold_epochs, history["loss"], color=palette[index], label=f"fold {index} train")
        right.plot(
            fold_epochs,
            history["val_loss"],
            color=palette[index],
            linestyle="--",
            label=f"fold {index} validation",
        )
    right.set(title=f"{name}: cross-validation folds of the winner", xlabel="epoch")
    right.legend(fontsize="small")
    return _save(figure, path)


def weight_violins(name: str, fit: FinalFit, path: Path) -> Path:
    """Distribution of every Dense layer's trained kernel weights, one violin per layer."""
    frame = pd.DataFrame(
        [(layer, value) for layer, values in fit.weight_quantiles.items() for value in values],
        columns=["layer", "weight"],
    )
    figure, axes = plt.subplots(figsize=(max(6, 1.6 * len(fit.weight_quantiles)), 4.2))
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
    return _save(figure, path)


def grid_chart(
    name: str, definition: StudyDefinition, points: list[RankedPoint], path: Path
) -> Path:
    """CV accuracy over the grid: a heatmap for two layers, a ranked strip for more."""
    if definition.n_layers == 2:
        l1, l2 = definition.grid["l1"], definition.grid["l2"]
        table = np.full((len(l1), len(l2)), np.nan)
        for point in points:
            table[l1.index(point.units[0]), l2.index(point.units[1])] = point.mean_accuracy
        figure, axes = plt.subplots(figsize=(6, 4.5))
        sns.heatmap(
            pd.DataFrame(table, index=list(l1), columns=list(l2)),
            annot=True,
            fmt=".4f",
            cmap="viridis",
            ax=axes,
            cbar_kws={"label": "mean CV accuracy"},
        )
        axes.set(title=f"{name}: CV accuracy over the grid", xlabel="l2 units", ylabel="l1 units")
        return _save(figure, path)
    figure, axes = plt.subplots(figsize=(max(7, 0.38 * len(points)), 4.5))
    labels = ["-".join(map(str, point.units)) for point in points]
    axes.errorbar(
        range(len(points)),
        [p.mean_accuracy for p in points],
        yerr=[p.std_accuracy for p in points],
        fmt="o",
        capsize=3,
    )
    axes.set_xticks(range(len(points)), labels, rotation=70, fontsize="small")
    axes.set(
        title=f"{name}: grid points ranked by CV accuracy (± std over folds)",
        xlabel="units per layer",
        ylabel="mean CV accuracy",
    )
    return _save(figure, path)


def comparison_chart(rows: list[dict[str, object]], path: Path) -> Path:
    """Every variant's best CV accuracy beside its test accuracy."""
    frame = pd.DataFrame(
        [(row["variant"], "CV accuracy", row["cv_accuracy_mean"]) for row in rows]
        + [(row["variant"], "test accuracy", row["test_accuracy"]) for row in rows],
        columns=["variant", "measure", "accuracy"],
    )
    figure, axes = plt.subplots(figsize=(max(6, 1.4 * len(rows)), 4.5))
    sns.barplot(data=frame, x="variant", y="accuracy", hue="measure", ax=axes)
    low = float(frame["accuracy"].min())
    axes.set_ylim(max(0.0, low - 0.05), min(1.0, float(frame["accuracy"].max()) + 0.02))
    axes.set(title="Best grid point of each variant", xlabel="")
    axes.tick_params(axis="x", rotation=20)
    return _save(figure, path)
