"""The report: a study's final comparison, rendered from recorded data only.

It trains nothing: the application (:mod:`tuner.api`) runs each winner's final fit and
stores it on the study first. For each variant whose grid is complete: that fit, its
over-fitting verdict, the pictures, and one row of the
comparison table; then comparison.csv/.json, report.md and a self-contained report.html.
The pictures and the final-fit summary are also attached to the study as Optuna
artifacts, so optuna-dashboard shows them. :class:`Report` hands the same numbers,
figures and paths to Python callers, and renders its comparison inline in Jupyter.
"""

from __future__ import annotations

import csv
import html
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from rich.console import Console

from tuner.errors import TunerError
from tuner.reporting import _html
from tuner.reporting._comparison import VariantComparison, VariantScores, compare_variants
from tuner.reporting._ranking import (
    RankedPoint,
    clipping_note,
    names_list,
    ranked_points,
    ranking_html,
    regularisation_of,
    setup_label,
    ties_sentence,
)
from tuner.reporting._verdict import RULE as VERDICT_RULE
from tuner.reporting._verdict import Verdict, judge_runs
from tuner.scheduling import GridState
from tuner.stats import DEFAULT_ALPHA
from tuner.storages import TrialLedger
from tuner.study import (
    FinalFit,
    StudyConfig,
    completed_folds,
    load_studies,
    schema,
    shown_value,
)

if TYPE_CHECKING:
    import pandas as pd

    from tuner.reporting._plots import ReportFigure

log = logging.getLogger(__name__)

COLUMNS = [
    "variant",
    "hidden_layers",
    "regularisation",
    "best_units",
    "best_axes",
    "cv_accuracy_mean",
    "cv_accuracy_std",
    "cv_accuracy_ci_low",
    "cv_accuracy_ci_high",
    "tied_with_best",
    "cv_repeats",
    "cv_folds",
    "test_accuracy",
    "test_accuracy_std",
    "final_train_loss",
    "test_loss",
    "test_loss_std",
    "final_seeds",
    "generalisation_gap",
    "best_epoch",
    "verdict",
    "verdict_reason",
    "epochs",
    "grid_points",
    "task",
    "metric",
    "data",
]
"""The comparison's columns: comparison.csv's header, the keys of each row.

Every ``accuracy`` column holds the study's score, named by ``metric``: accuracy for a
classification, R² for a regression (``task``); ``data`` describes the study's data (its
classes, or the regression's target, and its inputs).

``test_accuracy``, ``test_loss`` and ``final_train_loss`` are means over the winner's
``final_seeds`` final fits (one fit: its own numbers); the ``_std`` columns are the
sample standard deviations over them (empty with one fit). On a grid with axes,
``best_axes`` holds the winner's value of each (``batch_norm=false dropout=0.5``; empty
without axes), ``regularisation`` says which of BatchNorm and Dropout vary and the
winner's, and ``tied_with_best`` separates its points with ``; ``."""


@dataclass
class VariantReport:
    """One variant in the report: its winner's final fit, verdict, ranked grid and pictures.

    Attributes:
        config: The study's recorded settings (definition, dataset, epochs).
        study: The Optuna study.
        fit: The winner's final fits on all training images (one per seed), tested on
            the test set.
        verdict: Over-fits, under-fits or fits well, with its reason, judged on every
            seed's fit (:func:`judge_runs`).
        points: The ranked grid.
        pictures: The PNGs the report wrote, by title (loss curves, weights, grid).
    """

    config: StudyConfig
    study: optuna.Study
    fit: FinalFit
    verdict: Verdict
    points: list[RankedPoint]
    pictures: dict[str, Path] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The study's name."""
        return self.config.study_name

    def __repr__(self) -> str:
        return (
            f"VariantReport({self.name}: {self.verdict.word}, "
            f"test {self.config.task.metric_label} {self.fit.test_accuracy_mean:.4f})"
        )

    @property
    def winner(self) -> RankedPoint:
        """The ranked point the final fit trained (the best, unless the fit is older)."""
        for point in self.points:
            if point.trial_number == self.fit.trial_number:
                return point
        return self.points[0]

    def row(self) -> dict[str, Any]:
        """This variant's row of the comparison table (the keys of :data:`COLUMNS`)."""
        best = self.points[0]
        definition = self.config.definition
        return {
            "variant": self.name,
            "hidden_layers": definition.n_layers,
            "regularisation": regularisation_of(definition, best.axes),
            "best_units": "-".join(map(str, best.units)),
            "best_axes": " ".join(f"{n}={shown_value(v)}" for n, v in best.axes.items()),
            "cv_accuracy_mean": best.mean_accuracy,
            "cv_accuracy_std": best.std_accuracy,
            "cv_accuracy_ci_low": best.interval.low if best.interval else None,
            "cv_accuracy_ci_high": best.interval.high if best.interval else None,
            "tied_with_best": names_list([p.label for p in self.points[1:] if p.tied_with_best]),
            "cv_repeats": self.config.repeats,
            "cv_folds": self.config.definition.protocol.folds,
            "test_accuracy": self.fit.test_accuracy_mean,
            "test_accuracy_std": self.fit.test_accuracy_std,
            "final_train_loss": self.fit.train_loss_mean,
            "test_loss": self.fit.test_loss_mean,
            "test_loss_std": self.fit.test_loss_std,
            "final_seeds": len(self.fit.runs),
            "generalisation_gap": self.fit.test_loss_mean - self.fit.train_loss_mean,
            "best_epoch": self.verdict.best_epoch,
            "verdict": self.verdict.word,
            "verdict_reason": self.verdict.reason,
            "epochs": self.fit.epochs,
            "grid_points": self.config.definition.grid_size,
            "task": self.config.task.kind,
            "metric": self.config.task.metric_label,
            "data": self.config.task.describe(),
        }

    def fold_histories(self) -> list[dict[str, list[float]]]:
        """The per-epoch curves of the winner's cross-validation folds, fold 0 first."""
        for point in self.points:
            if point.trial_number == self.fit.trial_number:
                return [fold.history for fold in point.folds]
        trial = self.study.trials[self.fit.trial_number]
        return [result.history for _, result in sorted(completed_folds(trial).items())]

    def loss_curves(self) -> ReportFigure:
        """The final fit's train and test loss per epoch, beside the winner's CV folds."""
        from tuner.reporting import _plots

        return _plots.loss_curves(self.name, self.fit, self.fold_histories(), self.winner.label)

    def weight_violins(self) -> ReportFigure:
        """The distribution of each layer's trained weights, one violin per layer."""
        from tuner.reporting import _plots

        return _plots.weight_violins(self.name, self.fit)

    def grid_chart(self) -> ReportFigure:
        """CV accuracy over the grid: a heatmap for two layers, a ranked strip for more;
        on a grid with axes, heatmap panels (see :func:`tuner.reporting._plots.grid_chart`)."""
        from tuner.reporting import _plots

        return _plots.grid_chart(self.name, self.config.definition, self.points)

    def _repr_html_(self) -> str:
        return (
            f"<h3>{_html.escape(self.name)}: {_html.escape(self.verdict.word)}</h3>"
            f"<p>{_html.escape(self.verdict.reason)}; final fit of "
            f"{_html.escape(self.winner.label)}: test {self.config.task.metric_label} "
            f"{_with_spread(self.fit.test_accuracy_mean, self.fit.test_accuracy_std)}, "
            f"test loss {_with_spread(self.fit.test_loss_mean, self.fit.test_loss_std)}</p>"
            + ranking_html(self.name, self.config.definition, self.points)
        )


@dataclass(frozen=True)
class Report:
    """What ``tuner report`` wrote: the comparison's numbers, each variant, and the files.

    In Jupyter it renders as the comparison table with every verdict's reason.

    Attributes:
        out: The folder the report was written to.
        variants: Each reported study's :class:`VariantReport`, by study name.
        rows: The comparison, one row per variant (the keys of :data:`COLUMNS`), exactly
            as in comparison.csv and comparison.json.
        pairs: Every pair of variants' winners, tested (variant_pairs.csv).
        alpha: The significance level of the ties and the pairs.
    """

    out: Path
    variants: dict[str, VariantReport]
    rows: list[dict[str, Any]]
    pairs: list[VariantComparison] = field(default_factory=list)
    alpha: float = DEFAULT_ALPHA

    def __repr__(self) -> str:
        return f"Report({str(self.out)!r}: {', '.join(self.variants)})"

    @property
    def html_path(self) -> Path:
        """report.html: tables and pictures in one self-contained file."""
        return self.out / "report.html"

    @property
    def markdown_path(self) -> Path:
        """report.md, with the pictures beside it."""
        return self.out / "report.md"

    @property
    def csv_path(self) -> Path:
        """comparison.csv."""
        return self.out / "comparison.csv"

    @property
    def json_path(self) -> Path:
        """comparison.json."""
        return self.out / "comparison.json"

    @property
    def comparison_png(self) -> Path:
        """comparison.png: best CV accuracy beside test accuracy, per variant."""
        return self.out / "comparison.png"

    @property
    def pictures(self) -> dict[str, dict[str, Path]]:
        """Every variant's PNGs, by study name, then by title."""
        return {name: dict(variant.pictures) for name, variant in self.variants.items()}

    def to_records(self) -> list[dict[str, Any]]:
        """The comparison as plain dicts (copies)."""
        return [dict(row) for row in self.rows]

    def to_frame(self) -> pd.DataFrame:
        """The comparison as a DataFrame indexed by variant."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=COLUMNS).set_index("variant")

    def comparison_chart(self) -> ReportFigure:
        """Every variant's best CV accuracy beside its test accuracy."""
        from tuner.reporting import _plots

        return _plots.comparison_chart(self.rows)

    def _repr_html_(self) -> str:
        return comparison_html(self.rows)


def complete_studies(
    storage: optuna.storages.RDBStorage, names: list[str]
) -> list[tuple[optuna.Study, StudyConfig]]:
    """Named studies (each must be complete), or every tuner study whose grid is complete."""
    explicit = bool(names) and "all" not in names
    chosen = []
    for study, config in load_studies(storage, names):
        name = config.study_name
        if _is_complete(storage, study, config):
            chosen.append((study, config))
        elif explicit:
            raise TunerError(
                f"study '{name}' is not complete yet; finish it with `tuner worker` first"
            )
    return chosen


def _is_complete(
    storage: optuna.storages.RDBStorage, study: optuna.Study, config: StudyConfig
) -> bool:
    # A lean read (states and grid ids), so listing what to report costs the same at
    # 10,000 trials as at 100; only the studies reported are read in full.
    study_id = storage.get_study_id_from_name(study.study_name)
    rows = TrialLedger(storage, study_id, [schema.GRID_ID]).rows()
    state = GridState.of(rows, config.definition.grid_size)
    return len(state.complete) == config.definition.grid_size


def _draw(report: VariantReport, out: Path) -> None:
    from tuner.reporting import _plots

    folder = out / report.name
    report.pictures = {
        "loss curves": _plots.save(report.loss_curves(), folder / "loss.png"),
        "weights": _plots.save(report.weight_violins(), folder / "weights.png"),
        "grid": _plots.save(report.grid_chart(), folder / "grid.png"),
    }


def _attach_to_dashboard(
    report: VariantReport, storage: optuna.storages.BaseStorage, artifacts: Path, fresh: bool
) -> None:
    """Upload pictures and the fit summary once per final fit, not on every report.

    Optuna refuses attributes on finished trials, so they hang on the study, where
    optuna-dashboard lists them on the study's page.
    """
    if not fresh and report.study.user_attrs.get(schema.DASHBOARD_ARTIFACTS):
        return
    store = FileSystemArtifactStore(str(artifacts))
    artifacts.mkdir(parents=True, exist_ok=True)
    folder = report.pictures["loss curves"].parent
    summary = folder / "final_fit.json"
    layers = report.config.definition.layer_names
    # The winner's params name every axis, so the dashboard tells points apart.
    best = {"best_params": report.winner.params(layers)}
    summary.write_text(json.dumps({**report.row(), **best}, indent=2))
    uploaded = [
        upload_artifact(
            artifact_store=store,
            file_path=str(path),
            study_or_trial=report.study,
            storage=storage,
        )
        for path in [*report.pictures.values(), summary, folder / GRID_CSV]
    ]
    report.study.set_user_attr(schema.DASHBOARD_ARTIFACTS, uploaded)


GRID_CSV = "grid.csv"
"""Each variant's ranked grid, one row per point (one column per layer and per axis)."""


def _write_grid(report: VariantReport, out: Path) -> Path:
    """VARIANT/grid.csv: the ranked grid's records (:meth:`RankedPoint.to_record`)."""
    layers = report.config.definition.layer_names
    records = [point.to_record(report.name, layers) for point in report.points]
    columns = list(dict.fromkeys(key for record in records for key in record))
    path = out / report.name / GRID_CSV
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(records)
    return path


def _write_tables(reports: list[VariantReport], out: Path) -> list[dict[str, Any]]:
    rows = [report.row() for report in reports]
    with open(out / "comparison.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (out / "comparison.json").write_text(json.dumps(rows, indent=2))
    return rows


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


SHOWN = [
    ("variant", "variant"),
    ("hidden_layers", "layers"),
    ("regularisation", "regularisation"),
    ("best_units", "best units"),
    ("cv_accuracy_mean", "CV accuracy"),
    ("test_accuracy", "test accuracy"),
    ("final_train_loss", "train loss"),
    ("test_loss", "test loss"),
    ("best_epoch", "best epoch"),
    ("verdict", "verdict"),
]
"""The comparison's columns as the report shows them: (row key, title)."""


def _with_spread(mean: float, std: float | None, fits: int | None = None) -> str:
    """``0.8512``, or ``0.8512 ± 0.0031 (3 fits)`` over several final fits."""
    if std is None:
        return f"{mean:.4f}"
    return f"{mean:.4f} ± {std:.4f}" + (f" ({fits} fits)" if fits else "")


def _titles(rows: list[dict[str, Any]]) -> list[str]:
    """The shown columns' titles, the score named by the rows' metric (``score`` if mixed)."""
    metrics = {row.get("metric", "accuracy") for row in rows}
    metric = metrics.pop() if len(metrics) == 1 else "score"
    renamed = {"cv_accuracy_mean": f"CV {metric}", "test_accuracy": f"test {metric}"}
    return [renamed.get(key, title) for key, title in SHOWN]


def _comparison_cells(row: dict[str, Any]) -> list[str]:
    cells = [_fmt(row[key]) for key, _ in SHOWN]
    if row.get("best_axes"):
        cells[3] += f" {row['best_axes']}"
    cells[4] = f"{row['cv_accuracy_mean']:.4f} ± {row['cv_accuracy_std']:.4f}"
    if row["cv_accuracy_ci_low"] is not None:
        cells[4] += f" [{row['cv_accuracy_ci_low']:.4f}, {row['cv_accuracy_ci_high']:.4f}]"
    if row.get("cv_repeats", 1) > 1:
        cells[4] += f" ({row['cv_repeats']}x{row['cv_folds']}-fold)"
    seeds = row.get("final_seeds")
    cells[5] = _with_spread(row["test_accuracy"], row.get("test_accuracy_std"), seeds)
    cells[7] = _with_spread(row["test_loss"], row.get("test_loss_std"))
    return cells


PAIR_COLUMNS = ["first", "second", "difference", "paired", "p_value_holm", "significant"]
"""variant_pairs.csv's header: the keys of :meth:`VariantComparison.to_record`."""


def _write_pairs(pairs: list[VariantComparison], out: Path) -> None:
    with open(out / "variant_pairs.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=PAIR_COLUMNS)
        writer.writeheader()
        writer.writerows(pair.to_record() for pair in pairs)


def _significance_lines(
    reports: list[VariantReport], pairs: list[VariantComparison], alpha: float
) -> list[str]:
    """The report's statements on what is significant, one per study and per pair."""
    lines = [
        ties_sentence(
            r.name,
            r.points,
            alpha,
            r.config.task.metric_label,
            r.config.definition.protocol.folds,
        )
        for r in reports
    ]
    for report in reports:
        row = report.row()
        if row["test_accuracy"] > row["cv_accuracy_mean"]:
            metric = report.config.task.metric_label
            k = report.config.definition.protocol.folds
            lines.append(
                f"{report.name}: test {metric} {row['test_accuracy']:.4f} above CV "
                f"{row['cv_accuracy_mean']:.4f}: the final fit trains on every training row, "
                f"each CV model on {k - 1}/{k} of them"
            )
    return lines + [pair.sentence() for pair in pairs]


def comparison_html(rows: list[dict[str, Any]]) -> str:
    """The comparison table and every verdict's reason, as report.html shows them."""
    return _html.table(_titles(rows), [_comparison_cells(row) for row in rows]) + _html.bullet_list(
        [(row["variant"], f"{row['verdict']}: {row['verdict_reason']}") for row in rows]
    )


def _markdown_text(text: str) -> str:
    """Plain text for a Markdown line: no markup or HTML from what it quotes."""
    return html.escape(text).replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def _markdown(
    reports: list[VariantReport],
    rows: list[dict[str, Any]],
    out: Path,
    pairs: list[VariantComparison],
    alpha: float,
) -> str:
    lines = ["# tuner report", "", "## Comparison", ""]
    lines.append("| " + " | ".join(_titles(rows)) + " |")
    lines.append("|" + "---|" * len(SHOWN))
    lines += ["| " + " | ".join(_comparison_cells(row)) + " |" for row in rows]
    lines += ["", f"Verdict rule: {_markdown_text(VERDICT_RULE)}. Reasons:", ""]
    lines += [f"- **{row['variant']}**: {row['verdict']}: {row['verdict_reason']}" for row in rows]
    lines += ["", "![comparison](comparison.png)", "", "## What is significant", ""]
    lines += [f"- {_markdown_text(line)}" for line in _significance_lines(reports, pairs, alpha)]
    lines += [
        "",
        f"Corrected resampled t-tests (Nadeau & Bengio, 2003), Holm-corrected, alpha {alpha:g}: "
        "see docs/statistics.md.",
        "",
    ]
    for report in reports:
        definition = report.config.definition
        lines += [
            f"## {report.name}",
            "",
            f"{_markdown_text(setup_label(definition))}, "
            f"{definition.grid_size} grid points, {report.config.cv_label}, "
            f"{report.fit.epochs} epochs.",
            "",
            f"Data: {_markdown_text(report.config.task.describe())}.",
            "",
        ]
        metric = report.config.task.metric_label
        note = clipping_note(report.points)
        if note:
            lines += [_markdown_text(note) + ".", ""]
        names = [*definition.layer_names, *definition.axes]
        header = " | ".join(_markdown_text(name) for name in names)
        lines.append(f"| rank | {header} | CV {metric} | 95% CI | vs best | time |")
        lines.append("|---|" + "---|" * (len(names) + 4))
        for point in report.points:
            values = [*map(str, point.units), *map(shown_value, point.axes.values())]
            units = " | ".join(_markdown_text(value) for value in values)
            interval = point.interval
            shown = f"[{interval.low:.4f}, {interval.high:.4f}]" if interval else "-"
            mark = "best" if point.rank == 1 else ("tied" if point.tied_with_best else "")
            lines.append(
                f"| {point.rank} | {units} | {point.mean_accuracy:.4f} ± "
                f"{point.std_accuracy:.4f} | {shown} | {mark} | {point.seconds:.1f} s |"
            )
        lines.append("")
        for title, path in report.pictures.items():
            lines.append(f"![{report.name} {title}]({path.relative_to(out).as_posix()})")
        lines.append("")
    return "\n".join(lines)


def _page(
    reports: list[VariantReport],
    rows: list[dict[str, Any]],
    out: Path,
    pairs: list[VariantComparison],
    alpha: float,
) -> str:
    parts = [
        "<h1>tuner report</h1><h2>Comparison</h2>",
        comparison_html(rows),
        f"<p>Verdict rule: {_html.escape(VERDICT_RULE)}.</p>",
        _html.inline_png(out / "comparison.png"),
        "<h2>What is significant</h2>",
        _html.bullet_list([("", line) for line in _significance_lines(reports, pairs, alpha)]),
    ]
    for report in reports:
        definition = report.config.definition
        parts.append(f"<h2>{_html.escape(report.name)}</h2>")
        parts.append(
            f"<p>{_html.escape(setup_label(definition))}, {definition.grid_size} grid points, "
            f"{report.config.cv_label}, {report.fit.epochs} epochs. "
            f"Data: {_html.escape(report.config.task.describe())}.</p>"
        )
        note = clipping_note(report.points)
        if note:
            parts.append(f"<p>{_html.escape(note)}.</p>")
        parts.append(ranking_html(report.name, definition, report.points))
        parts += [_html.inline_png(path) for path in report.pictures.values()]
    return _html.page("tuner report", parts)


def build_report(
    fitted: list[tuple[optuna.Study, StudyConfig, FinalFit, bool]],
    storage: optuna.storages.BaseStorage,
    artifacts: Path,
    out: Path,
    console: Console,
    alpha: float = DEFAULT_ALPHA,
) -> Report:
    """Write the report of complete studies whose winners have their final fits.

    Args:
        fitted: Each study, its config, its winner's final fits, and whether any is
            new (its pictures are then attached to the study again).
        storage: The studies' storage (the dashboard's artifacts are recorded there).
        artifacts: The artifact folder of that storage.
        out: Folder to write into (created).
        console: Where progress messages go.
        alpha: Significance level of the ties with each best and of the variant pairs.

    Returns:
        The report.
    """
    out.mkdir(parents=True, exist_ok=True)
    reports = []
    for study, config, fit, fresh in fitted:
        name = config.study_name
        # The fit's own copy of the model goes with the report, too: read from the
        # storage, so only from inside the artifact folder (never any file it names).
        model = Path(fit.model_path).resolve()
        if model.is_relative_to(artifacts.resolve()) and model.is_file():
            (out / name).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model, out / name / "final.keras")
        elif fit.model_path:
            log.warning("%s: not copying the final model from outside %s", name, artifacts)
        report = VariantReport(
            config,
            study,
            fit,
            judge_runs([(run.history["loss"], run.history["val_loss"]) for run in fit.runs]),
            ranked_points(study, config.definition, alpha),
        )
        _draw(report, out)
        _write_grid(report, out)
        _attach_to_dashboard(report, storage, artifacts, fresh)
        reports.append(report)
    rows = _write_tables(reports, out)
    pairs = compare_variants(
        [
            VariantScores(r.name, r.config, [fold.accuracy for fold in r.points[0].folds])
            for r in reports
        ],
        alpha,
    )
    _write_pairs(pairs, out)
    result = Report(out, {report.name: report for report in reports}, rows, pairs, alpha)
    from tuner.reporting import _plots

    _plots.save(result.comparison_chart(), result.comparison_png)
    result.markdown_path.write_text(_markdown(reports, rows, out, pairs, alpha))
    result.html_path.write_text(_page(reports, rows, out, pairs, alpha))
    for line in _significance_lines(reports, pairs, alpha):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    console.print(f"report written to {result.html_path} (and report.md, comparison.csv)")
    return result
