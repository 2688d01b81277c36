"""``tuner launch``: create (or resume) each variant's study, then have workers finish it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import optuna
from rich.console import Console

from tuner.api._data import dataset_spec, in_memory_source
from tuner.api._local_workers import run_local_workers
from tuner.api._options import (
    WORKER_ONLY,
    Accepts,
    LaunchOptions,
    ReportOptions,
    WorkerOptions,
    accepted_names,
    check_known,
    documented,
)
from tuner.api._report import check_writable_folder, write_report
from tuner.api._setup import output, quiet_optuna, select_backend
from tuner.api._variants import VariantsArgument, resolve_variants
from tuner.api._worker import work_study
from tuner.data import DataCache, Dataset, DatasetSpec, check_foldable
from tuner.errors import TunerError
from tuner.reporting import Results, StudyResults, ranked_points, render_ranking
from tuner.storages import mask_password, open_storage
from tuner.study import StudyConfig, StudyDefinition, check_study_name, create_or_resume

Created = list[tuple[optuna.Study, StudyConfig]]


LAUNCH_ACCEPTS: tuple[Accepts, ...] = (
    LaunchOptions,
    (WorkerOptions, tuple(n for n in accepted_names(WorkerOptions) if n not in WORKER_ONLY)),
    (ReportOptions, ("out", "alpha", "final_seeds")),
)
"""The options ``tuner launch`` takes: its own, a worker's, and where its report goes."""


def create_studies(
    definitions: list[StudyDefinition],
    launch: LaunchOptions,
    spec: DatasetSpec,
    worker: WorkerOptions,
    backend: str,
    storage: optuna.storages.RDBStorage,
    fingerprint: str,
    dataset: Dataset,
) -> Created:
    """Create (or resume, after checking it matches) one study per definition."""
    created = []
    for definition in definitions:
        config = StudyConfig(
            study_name=launch.study_name or definition.name,
            definition=definition,
            dataset=spec,
            data_fingerprint=fingerprint,
            epochs=launch.epochs or definition.protocol.epochs,
            backend=backend,
            repeats=launch.repeats,
            task=dataset.task,
        )
        study = create_or_resume(storage, config, mix_backends=worker.mix_backends)
        created.append((study, config))
    return created


@documented(*LAUNCH_ACCEPTS)
def launch(
    variants: VariantsArgument,
    dataset: Any = LaunchOptions.dataset,
    *,
    console: Console | None = None,
    **options: Any,
) -> Results:
    """Create (or resume) one study per variant and evaluate its whole grid: ``tuner launch``.

        Completed grid points are never trained again, so calling it again resumes. A study
        records its definition, dataset, data fingerprint, epochs and CV repeats; launching
        again under the same name with different ones is refused (pass ``study_name`` to
        start another).

        Example:
            ``tuner.launch("2layer", "fashion-mnist", subset=3000, epochs=2, report=False)``

        Args:
            variants: A variant or several: names of definition files (``"all"`` for every
                one) or definitions from :func:`tuner.define_variant`.
            dataset: ``mnist``, ``fashion-mnist``, a path (a table with ``target``, an
                ``.npz``, a folder of IDX files), or data: a pandas DataFrame (with
                ``target``), ``(x, y)``, ``(x_train, y_train, x_test, y_test)`` or a dict of
                those arrays, written to ``tuner-data/`` for the workers to load.
            console: Where messages and progress go (default: standard output; in Jupyter,
                the cell).
            **options: Any option of ``tuner launch`` by its field name (see
                :class:`LaunchOptions`, :class:`WorkerOptions`, :class:`ReportOptions`):
    OPTIONS

        Returns:
            The studies' results by study name; ``.report`` holds the report, if written.

        Raises:
            TunerError: Anything the user can fix (an unknown variant or option, a value out
                of bounds, unreadable data, a storage that cannot be reached, a study created
                under other settings, grid points that keep failing), in one line.
            KeyboardInterrupt: Interrupted; the running grid point is re-run on the next
                launch, its finished folds reused.
    """
    check_known(options, *LAUNCH_ACCEPTS)
    source = in_memory_source(dataset)
    chosen = LaunchOptions.take({**options, "dataset": source or str(dataset)})
    worker = WorkerOptions.take(options)
    report = ReportOptions.take(options)
    definitions = resolve_variants(variants, chosen.studies_dir)
    if chosen.study_name and len(definitions) > 1:
        raise TunerError("--study-name names one study: give exactly one --variant with it")
    for definition in definitions:
        check_study_name(chosen.study_name or definition.name)
        if chosen.epochs and "epochs" in definition.axes:
            raise TunerError(
                f"--epochs {chosen.epochs}: variant '{definition.name}' has an epochs axis "
                "(each point trains its own epochs); leave --epochs out for it"
            )
    gpu_overrides = gpu_workers_of(chosen, worker)
    if chosen.report and chosen.workers > 0:
        # Found out now, not after hours of training (--workers 0 writes no report).
        check_writable_folder(Path(report.out), "--out")
    spec = dataset_spec(chosen)
    backend = select_backend(worker.backend, load=True)
    if backend == "jax" and chosen.workers > 0:
        from tuner.training import prepare_compile_cache

        prepare_compile_cache(worker.compile_cache)  # a bad folder refused before any work
    quiet_optuna(worker.verbose)
    shown = output(console)
    created, written = _launch(
        definitions, chosen, worker, report, backend, spec, shown, gpu_overrides
    )
    return Results(
        {config.study_name: StudyResults.of(study, config) for study, config in created},
        report=written,
    )


def gpu_workers_of(chosen: LaunchOptions, worker: WorkerOptions) -> list[dict[str, str]] | None:
    """The environment overrides of the workers ``--gpus`` starts (None without it).

    Raises:
        TunerError: ``--gpus`` combined with ``--workers`` or ``--gpu``,
            ``--workers-per-gpu`` without ``--gpus``, or devices this machine lacks.
    """
    if chosen.gpus is None:
        if chosen.workers_per_gpu != 1:
            raise TunerError("--workers-per-gpu needs --gpus (which devices to share)")
        return None
    if chosen.workers != 1:
        raise TunerError(
            "--gpus starts --workers-per-gpu workers on each device: leave --workers out"
        )
    if worker.gpu is not None:
        raise TunerError("--gpu picks one device in this process; with --gpus leave it out")
    from tuner.api._gpus import gpu_workers

    return gpu_workers(chosen.gpus, chosen.workers_per_gpu)


def _launch(
    definitions: list[StudyDefinition],
    chosen: LaunchOptions,
    worker: WorkerOptions,
    report: ReportOptions,
    backend: str,
    spec: DatasetSpec,
    console: Console,
    gpu_overrides: list[dict[str, str]] | None = None,
) -> tuple[Created, Any]:
    url = worker.storage_url
    # Data first: a mistyped dataset path should not leave an empty database behind.
    data = DataCache()
    dataset, fingerprint = data.load(spec)
    for folds in sorted({definition.protocol.folds for definition in definitions}):
        what = spec.source + (f" (--subset {spec.subset})" if spec.subset else "")
        check_foldable(dataset.y_train, folds, what, dataset.task)
    storage = open_storage(url, heartbeat_interval=worker.heartbeat_interval)
    created = create_studies(
        definitions, chosen, spec, worker, backend, storage, fingerprint, dataset
    )
    names = [config.study_name for _, config in created]
    console.print(
        f"storage {mask_password(url)}; dataset {spec.source} "
        f"({len(dataset.y_train)} training rows, {len(dataset.y_test)} test rows; "
        f"{dataset.task.describe()}); studies: {', '.join(names)}",
        highlight=False,
        soft_wrap=True,
    )
    if chosen.workers == 0:
        console.print(
            "studies created; start workers with:\n"
            f"  TUNER_STORAGE='{mask_password(url)}' tuner worker "
            + " ".join(f"--study-name {name}" for name in names),
            highlight=False,
        )
        return created, None
    worker = dataclasses.replace(worker, backend=backend)
    if gpu_overrides is not None:
        run_local_workers(names, worker, len(gpu_overrides), console, gpu_overrides)
    elif chosen.workers == 1:
        from tuner.training import configure_device

        device = configure_device(worker.threads, worker.gpu, worker.compile_cache)
        for study, config in created:
            work_study(storage, worker, study, config, dataset, device, console)
    else:
        run_local_workers(names, worker, chosen.workers, console)
    for study, config in created:
        points = ranked_points(study, config.definition)
        # The report that follows says the ties (once); without one, the ranking does.
        render_ranking(
            console, config.study_name, config.definition, points, ties=not chosen.report
        )
    if not chosen.report:
        return created, None
    return created, write_report(names, url, report, console, data=data)
