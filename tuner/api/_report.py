"""The report from Python: final fits, verdicts, tables and pictures, returned and written.

The final fit is an application step: it trains each winner (once, or ``final_seeds``
times from as many seeds, through :mod:`tuner.training`, imported only when a fit has to
run) and stores the fits on its study; :mod:`tuner.reporting` then renders from what is
stored, training nothing.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from rich.console import Console

from tuner.api._options import ReportOptions, WorkerOptions, check_known, documented
from tuner.api._setup import names_list, output, quiet_optuna, select_backend
from tuner.data import DataCache
from tuner.errors import TunerError
from tuner.reporting import Report, build_report, complete_studies
from tuner.storages import artifact_dir, open_storage
from tuner.study import FinalFit, SeedFit, StudyConfig, stored_final_fit

REPORT_WORKER_OPTIONS = ("storage", "backend")
"""The :class:`WorkerOptions` a report takes: where the studies are, where fits train."""


@documented(ReportOptions, (WorkerOptions, REPORT_WORKER_OPTIONS))
def report(
    names: str | Sequence[str] | None = None,
    *,
    console: Console | None = None,
    **options: Any,
) -> Report | None:
    """Retrain each winner, test it, judge it and write the comparison: ``tuner report``.

        A winner's final fit is stored on its study, so a second report does not retrain
        (unless ``refit``) and any machine with the storage can report; the deep-learning
        framework is imported only when a fit has to run.

        Args:
            names: Studies to report, each complete (default, or ``"all"``: every study
                whose grid is complete).
            console: Where messages go (default: standard output; in Jupyter, the cell).
            **options: Any option of ``tuner report`` by its field name:
    OPTIONS

        Returns:
            The comparison's numbers, each variant's fit, verdict, ranked grid, figures and
            their PNG paths; None when no study is complete yet.

        Raises:
            TunerError: A named study is missing or incomplete, the storage does not exist,
                or the data of a final fit differs from the study's.
    """
    check_known(options, ReportOptions, (WorkerOptions, REPORT_WORKER_OPTIONS))
    worker = WorkerOptions.take(options)
    chosen = ReportOptions.take(options)
    check_writable_folder(Path(chosen.out), "--out")
    select_backend(worker.backend, load=False)
    quiet_optuna(False)
    return write_report(names_list(names), worker.storage_url, chosen, output(console))


def check_writable_folder(folder: Path, flag: str) -> None:
    """Refuse, before any work, a folder that cannot be created or written to (it is
    tried, and what the try created is removed again).

    Raises:
        TunerError: ``folder`` is a file, or the nearest existing folder above it is
            not writable.
    """
    if folder.exists() and not folder.is_dir():
        raise TunerError(f"{flag} {folder} is a file, not a folder; give a folder")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise TunerError(
            f"{flag} {folder}: cannot write in {existing}; give a folder you can write to"
        )
    # Permissions do not tell everything (root, /proc, a read-only mount): try it, and
    # leave no folder behind (the work may still be refused for another reason).
    missing = [parent for parent in (folder, *folder.parents) if not parent.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise TunerError(
            f"{flag} {folder}: cannot write there ({exc.strerror or type(exc).__name__}); "
            "give a folder you can write to"
        ) from None
    finally:
        for created in missing:  # deepest first
            with contextlib.suppress(OSError):
                created.rmdir()


def write_report(
    names: list[str],
    storage_url: str,
    options: ReportOptions,
    console: Console,
    data: DataCache | None = None,
) -> Report | None:
    """Fit the winners that lack a stored final fit, then render the report.

    Args:
        names: Studies to report; empty (or ``all``) means every complete one.
        storage_url: The Optuna storage.
        options: Where to write, whether to fit again, how many final fits per winner.
        console: Where progress messages go.
        data: Datasets already loaded in this process, reused for final fits.

    Returns:
        The report, or None when no study has a complete grid yet.
    """
    storage = open_storage(storage_url, must_exist=True)
    chosen = complete_studies(storage, names)
    if not chosen:
        console.print("no study has a complete grid yet; nothing to report")
        return None
    artifacts = artifact_dir(storage_url)
    data = data or DataCache()
    fitted = [
        (
            study,
            config,
            *final_fit(study, config, artifacts, options.refit, data, console, options.final_seeds),
        )
        for study, config in chosen
    ]
    return build_report(fitted, storage, artifacts, Path(options.out), console, options.alpha)


def final_fit(
    study: optuna.Study,
    config: StudyConfig,
    artifacts: Path,
    refit: bool,
    data: DataCache,
    console: Console,
    seeds: int = 1,
) -> tuple[FinalFit, bool]:
    """The winner's ``seeds`` final fits: the stored ones, or new ones (stored); True when
    any is new.

    A stored record of the same winner is reused (unless ``refit``): with more fits than
    asked, its first ``seeds``; with fewer, only the missing seeds are trained.
    """
    stored = stored_final_fit(study)
    if stored and (refit or stored.trial_number != study.best_trial.number):
        stored = None
    if stored and len(stored.runs) >= seeds:
        return stored.first(seeds), False
    from tuner.training import configure_device, import_backend_quietly, run_final_fit

    import_backend_quietly()
    configure_device()
    dataset = data.verified(config.dataset, config.data_fingerprint, config.study_name)
    have = len(stored.runs) if stored else 0
    console.print(
        f"{config.study_name}: final fit of trial {study.best_trial.number} on "
        f"{len(dataset.y_train)} training rows, "
        f"{config.epochs_of(study.best_trial.params)} epochs"
        + (f", seeds {have + 1}-{seeds} of {seeds}" if seeds > 1 else "")
        + " ...",
        highlight=False,
    )

    def said(run: SeedFit) -> None:
        seed = f" (seed {run.seed})" if seeds > 1 else ""
        console.print(
            f"{config.study_name}: test {config.task.metric_label} {run.test_accuracy:.4f}, "
            "test loss "
            f"{run.test_loss:.4f}{seed} ({run.seconds:.0f} s)",
            highlight=False,
        )

    fit = run_final_fit(study, config, dataset, artifacts, seeds=seeds, earlier=stored, on_fit=said)
    if seeds > 1:
        console.print(
            f"{config.study_name}: over {seeds} seeds, test {config.task.metric_label} "
            f"{fit.test_accuracy_mean:.4f} ± {fit.test_accuracy_std or 0.0:.4f}, test loss "
            f"{fit.test_loss_mean:.4f} ± {fit.test_loss_std or 0.0:.4f} (mean ± std)",
            highlight=False,
        )
    return fit, True
