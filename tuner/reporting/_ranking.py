"""Ranked results of a study: the table `tuner launch` ends with, as text, HTML and records.

A grid point is its widths and, on a grid with axes (``dropout = [0.0, 0.5]`` ...), its
value of every axis: :func:`point_name` names it in reports and tables (``512-64``, or
``512-64 batch_norm=true dropout=0.5``; the seed study's compact form), and every table has
one column per axis. Messages about one trial (progress, status, the scheduler) spell the
layers out instead: ``StudyDefinition.point_label`` (``l1=512 l2=64 dropout=0.5``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tuner.reporting import _html
from tuner.stats import (
    DEFAULT_ALPHA,
    Interval,
    corrected_interval,
    corrected_paired_p,
    holdout_ratio,
    holm,
)
from tuner.study import (
    FoldResult,
    StudyDefinition,
    completed_folds,
    schema,
    shown_name,
    shown_value,
)


def point_name(units: Iterable[int], axes: Mapping[str, Any]) -> str:
    """How reports name a grid point: ``512-64``, then each axis' value on a grid with
    axes (``512-64 batch_norm=true dropout=0.5``), so points differing in an axis differ."""
    widths = "-".join(map(str, units))
    return " ".join([widths, *(f"{name}={shown_value(value)}" for name, value in axes.items())])


def names_list(labels: list[str]) -> str:
    """Several point names in one cell: space-separated while names hold no space
    (widths only, as before axes), else ``; ``-separated."""
    return ("; " if any(" " in label for label in labels) else " ").join(labels)


def setup_label(definition: StudyDefinition) -> str:
    """The study's regularisation, or on a grid with axes what varies:
    ``BatchNorm + Dropout``, ``axes: batch_norm {true,false}, dropout {0.0,0.5}``,
    ``BatchNorm only; axes: learning_rate {0.0003,0.001}``."""
    if not definition.axes:
        return definition.regularisation
    varies = ", ".join(
        f"{name} {{{','.join(map(shown_value, values))}}}"
        for name, values in definition.axes.items()
    )
    if "batch_norm" in definition.axes or "dropout" in definition.axes:
        return f"axes: {varies}"
    return f"{definition.regularisation}; axes: {varies}"


def regularisation_of(definition: StudyDefinition, axes: Mapping[str, Any]) -> str:
    """A point's regularisation, saying what varies where BatchNorm or Dropout is an axis:
    ``varies: batch_norm, dropout (best: Dropout only)``."""
    varying = [name for name in ("batch_norm", "dropout") if name in definition.axes]
    if not varying:
        return definition.regularisation
    chosen = definition.at(dict(axes)).regularisation
    return f"varies: {', '.join(varying)} (best: {chosen})"


@dataclass(frozen=True)
class RankedPoint:
    """One evaluated grid point: its rank, widths and cross-validation numbers.

    Attributes:
        rank: 1 for the best mean CV accuracy.
        trial_number: The COMPLETE trial that holds the point's result.
        units: Hidden-layer widths, in layer order.
        mean_accuracy: Mean validation accuracy over the folds (the trial's value).
        std_accuracy: Its standard deviation over the folds.
        seconds: Wall time of the trial.
        loss_mean: Mean validation loss over the folds (None where not recorded).
        loss_std: Its standard deviation over the folds (None where not recorded).
        train_seconds: Time spent training, summed over the folds (None where not recorded).
        folds: Every fold's accuracy, loss, time and per-epoch curves, fold 0 first.
        interval: The mean CV accuracy's 95% corrected t interval (None: under 2 folds).
        p_vs_best: Holm-adjusted p-value of the paired corrected t-test against the best
            point (1.0 for the best itself; None where the folds differ).
        tied_with_best: The best point, or one whose difference from it is not
            significant at the ranking's alpha.
        axes: The point's value of each grid axis besides the widths (``dropout``,
            ``learning_rate`` ...), in the definition's axis order; empty without axes.
    """

    rank: int
    trial_number: int
    units: tuple[int, ...]
    mean_accuracy: float
    std_accuracy: float
    seconds: float
    loss_mean: float | None = None
    loss_std: float | None = None
    train_seconds: float | None = None
    # Curves are long; the repr stays one line.
    folds: tuple[FoldResult, ...] = field(default=(), repr=False)
    interval: Interval | None = None
    p_vs_best: float | None = None
    tied_with_best: bool = False
    axes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How sentences name the point: ``512-128``, with its axes ``512-128 dropout=0.5``
        (:func:`point_name`)."""
        return point_name(self.units, self.axes)

    def params(self, layer_names: list[str]) -> dict[str, Any]:
        """The point's trial params: every width by its layer's name, then every axis."""
        return {**dict(zip(layer_names, self.units, strict=True)), **self.axes}

    def to_record(self, study_name: str, layer_names: list[str]) -> dict[str, Any]:
        """A flat, JSON-ready row: one column per layer's units, per axis (named by the
        axis: ``dropout``, ``learning_rate`` ...) and per fold's numbers."""
        record: dict[str, Any] = {
            "study": study_name,
            "rank": self.rank,
            "trial": self.trial_number,
            **self.params(layer_names),
            "units": "-".join(map(str, self.units)),
            "cv_accuracy_mean": self.mean_accuracy,
            "cv_accuracy_std": self.std_accuracy,
            "cv_accuracy_ci_low": self.interval.low if self.interval else None,
            "cv_accuracy_ci_high": self.interval.high if self.interval else None,
            "p_vs_best_holm": self.p_vs_best,
            "tied_with_best": self.tied_with_best,
            "cv_loss_mean": self.loss_mean,
            "cv_loss_std": self.loss_std,
        }
        for fold in self.folds:
            record[f"fold_{fold.fold}_accuracy"] = fold.accuracy
            record[f"fold_{fold.fold}_loss"] = fold.loss
        record["train_seconds"] = self.train_seconds
        record["wall_seconds"] = self.seconds
        return record


def _optional(attrs: dict[str, Any], key: str) -> float | None:
    value = attrs.get(key)
    return None if value is None else float(value)


def ranked_points(
    study: optuna.Study, definition: StudyDefinition, alpha: float = DEFAULT_ALPHA
) -> list[RankedPoint]:
    """COMPLETE trials, best mean CV accuracy first (ties: lower trial number first), each
    with its corrected interval and whether it is tied with the best (see
    :mod:`tuner.stats`: paired corrected t-tests against the best, Holm-corrected)."""
    # Stored trials are untrusted: one without every grid parameter is not a point of
    # this grid, and is left out rather than crash the ranking.
    names = (*definition.layer_names, *definition.axes)
    complete = [
        trial
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if all(name in trial.params for name in names)
    ]
    ordered = sorted(complete, key=lambda t: (-(t.value or 0.0), t.number))
    points = [
        RankedPoint(
            rank=rank,
            trial_number=trial.number,
            units=definition.units_of(trial.params),
            axes=definition.axis_params(trial.params),
            mean_accuracy=float(trial.value or 0.0),
            std_accuracy=float(trial.user_attrs.get(schema.ACCURACY_STD, 0.0)),
            seconds=float(trial.user_attrs.get(schema.WALL_SECONDS, 0.0)),
            loss_mean=_optional(trial.user_attrs, schema.LOSS_MEAN),
            loss_std=_optional(trial.user_attrs, schema.LOSS_STD),
            train_seconds=_optional(trial.user_attrs, schema.TRAIN_SECONDS),
            folds=tuple(result for _, result in sorted(completed_folds(trial).items())),
        )
        for rank, trial in enumerate(ordered, start=1)
    ]
    scores = [trial.user_attrs.get(schema.FOLD_ACCURACIES) or [] for trial in ordered]
    return with_ties(
        points, scores, alpha, folds=definition.protocol.folds, bounds=definition.task.score_range
    )


def with_ties(
    points: list[RankedPoint],
    scores: list[list[float]],
    alpha: float = DEFAULT_ALPHA,
    *,
    folds: int | None = None,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> list[RankedPoint]:
    """The ranked points with their intervals, p-values against the best and ties.

    Args:
        points: Ranked, best first.
        scores: Each point's per-fold accuracies, in fold order (the folds are shared):
            k of them, or R*k with repeated CV.
        alpha: Significance level of the Holm-corrected paired tests.
        folds: k, the folds of one split, which sets n_test/n_train (default: as many
            as each point has scores, i.e. no repetitions). With R*k scores the tests
            are the repeated-CV form (Bouckaert & Frank, 2004): J = R*k, ratio 1/(k-1).
        bounds: The score's range; an interval past it is cut to it (and says so).
    """
    if not points:
        return points
    n = len(scores[0])

    def ratio_of(scores_count: int) -> float:
        k = folds or scores_count
        return holdout_ratio(k) if k > 1 else math.nan

    raw = [
        corrected_paired_p(scores[0], other, ratio_of(n)) if len(other) == n > 1 else math.nan
        for other in scores[1:]
    ]
    adjusted = holm(raw)
    result = []
    for index, (point, own) in enumerate(zip(points, scores, strict=True)):
        interval = (
            corrected_interval(own, ratio_of(len(own))).within(*bounds) if len(own) > 1 else None
        )
        if index == 0:
            p: float | None = 1.0  # the best, against itself
        else:
            p = None if math.isnan(adjusted[index - 1]) else adjusted[index - 1]
        tied = index == 0 or (p is not None and p >= alpha)
        result.append(replace(point, interval=interval, p_vs_best=p, tied_with_best=tied))
    return result


MAX_ADVISED_REPEATS = 100
"""The most ``--repeats`` the tie advice considers (the option's own maximum)."""


def tie_advice(points: list[RankedPoint], alpha: float, folds: int | None) -> str | None:
    """When the best is tied with most of the grid: what would separate it from the second.

    At the observed mean difference and spread of their paired fold scores, the fewest
    repetitions R of k-fold CV whose corrected paired test (J = R*k scores, variance
    factor 1/J + 1/(k-1)) reaches ``alpha``; or, where even MAX_ADVISED_REPEATS cannot
    (the 1/(k-1) term stays), that more data or training is what helps. None when most
    points are not tied, or the folds do not allow the computation.
    """
    from scipy import stats as scipy_stats

    if len(points) < 3 or sum(p.tied_with_best for p in points[1:]) * 2 < len(points) - 1:
        return None
    best = [fold.accuracy for fold in points[0].folds]
    second = [fold.accuracy for fold in points[1].folds]
    if len(best) != len(second) or len(best) < 2:
        return None
    differences = np.subtract(best, second)
    mean, variance = float(differences.mean()), float(differences.var(ddof=1))
    k = folds or len(best)
    if mean <= 0 or variance <= 0 or k < 2:
        return None
    spread = math.sqrt(variance)
    head = (
        f"most points are tied with the best: it leads the second by {mean:.4f} against a "
        f"fold-to-fold spread of {spread:.4f}"
    )
    now = len(best) // k
    for repeats in range(now + 1, MAX_ADVISED_REPEATS + 1):
        scores = repeats * k
        t = mean / math.sqrt((1 / scores + 1 / (k - 1)) * variance)
        if 2 * scipy_stats.t.sf(t, scores - 1) < alpha:
            return (
                f"{head}; at that spread at least --repeats {repeats} would separate them "
                f"({repeats / max(now, 1):.0f}x the training), or train longer where the "
                "verdict says still improving"
            )
    return (
        f"{head}; no number of --repeats separates them with {k} folds (the corrected test "
        "keeps 1/(k-1) of the spread): more data, more folds or more epochs may"
    )


def ties_sentence(
    study_name: str,
    points: list[RankedPoint],
    alpha: float,
    metric: str = "accuracy",
    folds: int | None = None,
) -> str:
    """What the ranking can and cannot tell apart, in words derived from the data
    (``metric``: the task's score, as :attr:`tuner.data.Task.metric_label` names it), and
    when most points are tied, what would separate them (:func:`tie_advice`; ``folds``:
    k of one split)."""
    if not points:
        return f"{study_name}: no complete grid point yet"
    best, tied = points[0], [p.label for p in points[1:] if p.tied_with_best]
    head = f"{study_name}: best {best.label}"
    if best.interval is not None:
        cut = ", clipped to the score's range" if best.interval.clipped else ""
        head += f" (CV {metric} {best.interval}{cut})"
    if len(points) == 1:
        return head
    if not tied:
        return f"{head}; significantly better than every other point (alpha {alpha:g}, Holm)"
    sentence = (
        f"{head}; tied with it (difference not significant at alpha {alpha:g}, corrected "
        f"paired t-test, Holm): {', '.join(tied)}"
    )
    advice = tie_advice(points, alpha, folds)
    return f"{sentence}. Advice: {advice}" if advice else sentence


def clipping_note(points: list[RankedPoint]) -> str | None:
    """The line that says some intervals were cut to the score's range, if any were."""
    cut = [p for p in points if p.interval is not None and p.interval.clipped]
    if not cut:
        return None
    return (
        f"{len(cut)} interval(s) cut to the score's range (the t interval of a few folds "
        "can run past it; the cut ends are the range's own)"
    )


def ranking_title(study_name: str, definition: StudyDefinition, points: list[RankedPoint]) -> str:
    """``NAME: k/N grid points (regularisation)``, the ranked grid's caption everywhere."""
    return (
        f"{study_name}: {len(points)}/{definition.grid_size} grid points "
        f"({setup_label(definition)})"
    )


def _cells(point: RankedPoint) -> list[str]:
    interval = point.interval
    return [
        str(point.rank),
        str(point.trial_number),
        *(str(u) for u in point.units),
        *(shown_value(value) for value in point.axes.values()),
        f"{point.mean_accuracy:.4f} ± {point.std_accuracy:.4f}",
        f"[{interval.low:.4f}, {interval.high:.4f}]" if interval else "-",
        "best" if point.rank == 1 else ("tied" if point.tied_with_best else ""),
        f"{point.seconds:.1f} s",
    ]


def _header(definition: StudyDefinition) -> list[str]:
    return [
        "rank",
        "trial",
        *definition.layer_names,
        *definition.axes,
        f"CV {definition.task.metric_label}",
        "95% CI",
        "vs best",
        "time",
    ]


def ranking_html(study_name: str, definition: StudyDefinition, points: list[RankedPoint]) -> str:
    """The ranked grid as an HTML table, captioned like the terminal's."""
    return _html.table(
        _header(definition),
        [_cells(point) for point in points],
        caption=ranking_title(study_name, definition, points),
    )


def render_ranking(
    console: Console,
    study_name: str,
    definition: StudyDefinition,
    points: list[RankedPoint],
    *,
    ties: bool = True,
) -> None:
    """Print the ranked grid and the best point; with ``ties``, what the ranking can tell
    apart (left out when a report, which says it, follows at once)."""
    table = Table(title=Text(ranking_title(shown_name(study_name), definition, points)))
    for column in _header(definition):
        table.add_column(column, justify="right")
    for point in points:
        table.add_row(*_cells(point))
    console.print(table)
    note = clipping_note(points)
    if note:
        console.print(note, highlight=False, markup=False)
    if points:
        best = points[0]
        console.print(
            f"best {shown_name(study_name)}: "
            f"{definition.point_label(best.params(definition.layer_names))} "
            f"CV {definition.task.metric_label} {best.mean_accuracy:.4f} ± "
            f"{best.std_accuracy:.4f}",
            highlight=False,
            markup=False,
        )
        if ties:
            metric, folds = definition.task.metric_label, definition.protocol.folds
            line = ties_sentence(shown_name(study_name), points, DEFAULT_ALPHA, metric, folds)
            console.print(line, highlight=False, markup=False)
