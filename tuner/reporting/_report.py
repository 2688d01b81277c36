"""`tuner report`: the study's final comparison, computed from recorded data.

For each variant whose grid is complete: the winner's final fit (run once, then read
back from the storage), its over-fitting verdict, the pictures, and one row of the
comparison table; then comparison.csv/.json, report.md and a self-contained report.html.
The pictures and the final-fit summary are also attached to the study as Optuna
artifacts, so optuna-dashboard shows them.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from rich.console import Console

from tuner.data import DataCache
from tuner.errors import TunerError
from tuner.reporting import _plots as plots
from tuner.reporting._ranking import RankedPoint, ranked_points
from tuner.reporting._verdict import Verdict, judge
from tuner.scheduling import GridState
from tuner.storages import artifact_dir, open_storage
from tuner.study import (
    FinalFit,
    StudyConfig,
    completed_folds,
    load,
    resolve_study_names,
    schema,
    stored_final_fit,
)

COLUMNS = [
    "variant",
    "hidden_layers",
    "regularisation",
    "best_units",
    "cv_accuracy_mean",
    "cv_accuracy_std",
    "test_accuracy",
    "final_train_loss",
    "test_loss",
    "generalisation_gap",
    "best_epoch",
    "verdict",
    "verdict_reason",
    "epochs",
    "grid_points",
]


@dataclass
class VariantReport:
    config: StudyConfig
    study: optuna.Study
    fit: FinalFit
    verdict: Verdict
    points: list[RankedPoint]
    pictures: dict[str, Path] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.study_name

    def row(self) -> dict[str, Any]:
        best = self.points[0]
        return {
            "variant": self.name,
            "hidden_layers": self.config.definition.n_layers,
            "regularisation": self.config.definition.regularisation,
            "best_units": "-".join(map(str, best.units)),
            "cv_accuracy_mean": best.mean_accuracy,
            "cv_accuracy_std": best.std_accuracy,
            "test_accuracy": self.fit.test_accuracy,
            "final_train_loss": self.fit.train_loss,
            "test_loss": self.fit.test_loss,
            "generalisation_gap": self.fit.test_loss - self.fit.train_loss,
            "best_epoch": self.verdict.best_epoch,
            "verdict": self.verdict.word,
            "verdict_reason": self.verdict.reason,
            "epochs": self.fit.epochs,
            "grid_points": self.config.definition.grid_size,
        }


def complete_studies(
    storage: optuna.storages.BaseStorage, names: list[str]
) -> list[tuple[optuna.Study, StudyConfig]]:
    """Named studies (each must be complete), or every tuner study whose grid is complete."""
    explicit = bool(names) and "all" not in names
    chosen = []
    for name in resolve_study_names(storage, names):
        study, config = load(storage, name)
        if _is_complete(study, config):
            chosen.append((study, config))
        elif explicit:
            raise TunerError(
                f"study '{name}' is not complete yet; finish it with `tuner worker` first"
            )
    return chosen


def _is_complete(study: optuna.Study, config: StudyConfig) -> bool:
    state = GridState.of(study.get_trials(deepcopy=False), config.definition.grid_size)
    return len(state.complete) == config.definition.grid_size


def _final_fit(
    study: optuna.Study,
    config: StudyConfig,
    artifacts: Path,
    refit: bool,
    data: DataCache,
    console: Console,
) -> tuple[FinalFit, bool]:
    stored = stored_final_fit(study)
    if stored and not refit and stored.trial_number == study.best_trial.number:
        return stored, False
    from tuner.training import configure_device, import_backend_quietly, run_final_fit

    import_backend_quietly()
    configure_device()
    dataset = data.verified(config.dataset, config.data_fingerprint, config.study_name)
    console.print(
        f"{config.study_name}: final fit of trial {study.best_trial.number} on "
        f"{len(dataset.y_train)} training images, {config.epochs} epochs ...",
        highlight=False,
    )
    fit = run_final_fit(study, config, dataset, artifacts)
    console.print(
        f"{config.study_name}: test accuracy {fit.test_accuracy:.4f}, test loss "
        f"{fit.test_loss:.4f} ({fit.seconds:.0f} s)",
        highlight=False,
    )
    return fit, True


def _draw(report: VariantReport, out: Path) -> None:
    folder = out / report.name
    best_trial = report.study.trials[report.fit.trial_number]
    folds = [result.history for _, result in sorted(completed_folds(best_trial).items())]
    definition = report.config.definition
    report.pictures = {
        "loss curves": plots.loss_curves(report.name, report.fit, folds, folder / "loss.png"),
        "weights": plots.weight_violins(report.name, report.fit, folder / "weights.png"),
        "grid": plots.grid_chart(report.name, definition, report.points, folder / "grid.png"),
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
    summary = report.pictures["loss curves"].parent / "final_fit.json"
    summary.write_text(json.dumps(report.row(), indent=2))
    uploaded = [
        upload_artifact(
            artifact_store=store,
            file_path=str(path),
            study_or_trial=report.study,
            storage=storage,
        )
        for path in [*report.pictures.values(), summary]
    ]
    report.study.set_user_attr(schema.DASHBOARD_ARTIFACTS, uploaded)


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


def _markdown(reports: list[VariantReport], rows: list[dict[str, Any]], out: Path) -> str:
    lines = ["# tuner report", "", "## Comparison", ""]
    lines.append("| " + " | ".join(title for _, title in SHOWN) + " |")
    lines.append("|" + "---|" * len(SHOWN))
    for row in rows:
        cells = [_fmt(row[key]) for key, _ in SHOWN]
        cells[4] = f"{row['cv_accuracy_mean']:.4f} ± {row['cv_accuracy_std']:.4f}"
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Verdict rule: see `tuner/verdict.py`. Reasons:", ""]
    lines += [f"- **{row['variant']}**: {row['verdict']}: {row['verdict_reason']}" for row in rows]
    lines += ["", "![comparison](comparison.png)", ""]
    for report in reports:
        definition = report.config.definition
        lines += [
            f"## {report.name}",
            "",
            f"{definition.regularisation}, "
            f"{definition.grid_size} grid points, {report.fit.epochs} epochs.",
            "",
        ]
        lines.append("| rank | " + " | ".join(definition.layer_names) + " | CV accuracy | time |")
        lines.append("|---|" + "---|" * (definition.n_layers + 2))
        for point in report.points:
            units = " | ".join(map(str, point.units))
            lines.append(
                f"| {point.rank} | {units} | {point.mean_accuracy:.4f} ± "
                f"{point.std_accuracy:.4f} | {point.seconds:.1f} s |"
            )
        lines.append("")
        for title, path in report.pictures.items():
            lines.append(f"![{report.name} {title}]({path.relative_to(out).as_posix()})")
        lines.append("")
    return "\n".join(lines)


def _inline(path: Path) -> str:
    encoded = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{encoded}">'


def _html(reports: list[VariantReport], rows: list[dict[str, Any]], out: Path) -> str:
    def table(header: list[str], body: list[list[str]]) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        cells = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>"

    comparison = [
        [_fmt(row[key]) for key, _ in SHOWN[:4]]
        + [f"{row['cv_accuracy_mean']:.4f} ± {row['cv_accuracy_std']:.4f}"]
        + [_fmt(row[key]) for key, _ in SHOWN[5:]]
        for row in rows
    ]
    parts = [
        "<h1>tuner report</h1><h2>Comparison</h2>",
        table([title for _, title in SHOWN], comparison),
        "<ul>"
        + "".join(
            f"<li><b>{html.escape(r['variant'])}</b>: {html.escape(r['verdict'])}: "
            f"{html.escape(r['verdict_reason'])}</li>"
            for r in rows
        )
        + "</ul>",
        _inline(out / "comparison.png"),
    ]
    for report in reports:
        definition = report.config.definition
        parts.append(f"<h2>{html.escape(report.name)}</h2>")
        parts.append(
            f"<p>{html.escape(definition.regularisation)}, {definition.grid_size} grid points, "
            f"{report.fit.epochs} epochs.</p>"
        )
        parts.append(
            table(
                ["rank", *definition.layer_names, "CV accuracy", "time"],
                [
                    [
                        str(p.rank),
                        *map(str, p.units),
                        f"{p.mean_accuracy:.4f} ± {p.std_accuracy:.4f}",
                        f"{p.seconds:.1f} s",
                    ]
                    for p in report.points
                ],
            )
        )
        parts += [_inline(path) for path in report.pictures.values()]
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:right}th{background:#f3f3f3}img{max-width:100%;"
        "display:block;margin:1em 0}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>tuner report</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )


def build_report(
    names: list[str],
    storage_url: str,
    out: Path,
    refit: bool,
    console: Console,
    data: DataCache | None = None,
) -> Path | None:
    """Write the report for the chosen (or all complete) studies; returns report.html."""
    storage = open_storage(storage_url, must_exist=True)
    chosen = complete_studies(storage, names)
    if not chosen:
        console.print("no study has a complete grid yet; nothing to report")
        return None
    artifacts = artifact_dir(storage_url)
    data = data or DataCache()
    out.mkdir(parents=True, exist_ok=True)
    reports = []
    for study, config in chosen:
        name = config.study_name
        fit, fresh = _final_fit(study, config, artifacts, refit, data, console)
        # The fit's own copy of the model goes with the report, too.
        if Path(fit.model_path).is_file():
            (out / name).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(fit.model_path, out / name / "final.keras")
        history = fit.history
        report = VariantReport(
            config,
            study,
            fit,
            judge(history["loss"], history["val_loss"]),
            ranked_points(study, config.definition),
        )
        _draw(report, out)
        _attach_to_dashboard(report, storage, artifacts, fresh)
        reports.append(report)
    rows = _write_tables(reports, out)
    plots.comparison_chart(rows, out / "comparison.png")
    (out / "report.md").write_text(_markdown(reports, rows, out))
    (out / "report.html").write_text(_html(reports, rows, out))
    console.print(f"report written to {out / 'report.html'} (and report.md, comparison.csv)")
    return out / "report.html"
