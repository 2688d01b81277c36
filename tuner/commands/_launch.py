"""`tuner launch`: create (or resume) each variant's study, then have workers finish it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import optuna
from rich.console import Console

from tuner import study as studies
from tuner.commands._local_workers import run_local_workers
from tuner.commands._options import LaunchOptions
from tuner.commands._worker import work_study
from tuner.data import DataCache, check_foldable
from tuner.errors import TunerError
from tuner.reporting import ranked_points, render_ranking
from tuner.storages import mask_password, open_storage
from tuner.study import StudyDefinition

if TYPE_CHECKING:
    from tuner.reporting import Report


def create_studies(
    definitions: list[StudyDefinition],
    options: LaunchOptions,
    storage: optuna.storages.RDBStorage,
    fingerprint: str,
) -> list[tuple[optuna.Study, studies.StudyConfig]]:
    """Create (or resume, after checking it matches) one study per definition."""
    created = []
    for definition in definitions:
        config = studies.StudyConfig(
            study_name=options.study_name or definition.name,
            definition=definition,
            dataset=options.dataset,
            data_fingerprint=fingerprint,
            epochs=options.epochs or definition.protocol.epochs,
            backend=options.worker.backend,
        )
        study = studies.create_or_resume(storage, config, mix_backends=options.worker.mix_backends)
        created.append((study, config))
    return created


def launch(
    definitions: list[StudyDefinition], options: LaunchOptions, console: Console
) -> tuple[list[tuple[optuna.Study, studies.StudyConfig]], Report | None]:
    """Create or resume one study per definition, evaluate its whole grid, print the ranking.

    Returns the studies (with their configs) and the report, when one was written.
    """
    if options.study_name and len(definitions) > 1:
        raise TunerError("--study-name names one study: give exactly one --variant with it")
    if options.epochs is not None and options.epochs <= 0:
        raise TunerError(f"--epochs must be positive, got {options.epochs}")
    if options.workers < 0:
        raise TunerError(f"--workers must be 0 or more, got {options.workers}")
    url = options.worker.storage_url
    # Data first: a mistyped dataset path should not leave an empty database behind.
    data = DataCache()
    dataset, fingerprint = data.load(options.dataset)
    for folds in sorted({definition.protocol.folds for definition in definitions}):
        what = options.dataset.source + (
            f" (--subset {options.dataset.subset})" if options.dataset.subset else ""
        )
        check_foldable(dataset.y_train, folds, what)
    storage = open_storage(url, heartbeat_interval=options.worker.heartbeat_interval)
    created = create_studies(definitions, options, storage, fingerprint)
    names = [config.study_name for _, config in created]
    console.print(
        f"storage {mask_password(url)}; dataset {options.dataset.source} "
        f"({len(dataset.y_train)} training images); studies: {', '.join(names)}",
        highlight=False,
    )
    if options.workers == 0:
        console.print(
            "studies created; start workers with:\n"
            f"  TUNER_STORAGE='{mask_password(url)}' tuner worker "
            + " ".join(f"--study-name {name}" for name in names),
            highlight=False,
        )
        return created, None
    if options.workers == 1:
        from tuner.training import configure_device

        device = configure_device(options.worker.threads, options.worker.gpu)
        for study, config in created:
            work_study(storage, options.worker, study, config, dataset, device, console)
    else:
        run_local_workers(names, options.worker, options.workers, console)
    for study, config in created:
        points = ranked_points(study, config.definition)
        render_ranking(console, config.study_name, config.definition, points)
    if options.report_dir is None:
        return created, None
    from tuner.reporting import build_report

    report = build_report(names, url, options.report_dir, refit=False, console=console, data=data)
    return created, report
