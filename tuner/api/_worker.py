"""``tuner worker``: join studies that already exist and evaluate grid points until none is left.

A worker needs nothing but the storage URL and access to the data: the dataset spec,
epochs and definition come from the study itself, and the data is fingerprinted and
compared with the study's record before a single trial is claimed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import optuna
from rich.console import Console

from tuner.api._options import WorkerOptions, check_known, documented
from tuner.api._setup import names_list, output, quiet_optuna, select_backend
from tuner.data import DataCache, Dataset, repeated_folds
from tuner.progress import ProgressDisplay
from tuner.scheduling import GridScheduler, RunSummary, TrialRunner
from tuner.storages import mask_password, open_storage
from tuner.study import StudyConfig, check_backend, load_studies
from tuner.training import training_strategy

log = logging.getLogger(__name__)


def study_scheduler(
    storage: optuna.storages.RDBStorage,
    options: WorkerOptions,
    study: optuna.Study,
    config: StudyConfig,
) -> GridScheduler:
    """The scheduler that claims this worker's grid points of one study."""
    return GridScheduler(
        storage,
        options.storage_url,
        study,
        config.definition,
        max_attempts=options.max_attempts,
        max_stale_attempts=options.max_stale_attempts,
        expected_workers=options.expected_workers,
        curve_interval=options.curve_interval,
    )


def work_study(
    storage: optuna.storages.RDBStorage,
    options: WorkerOptions,
    study: optuna.Study,
    config: StudyConfig,
    dataset: Dataset,
    device: str,
    console: Console,
    scheduler: GridScheduler | None = None,
) -> RunSummary:
    """Evaluate grid points of one study until every point is done, with progress shown."""
    from tuner.training import CrossValidation

    definition = config.definition
    strategy = training_strategy(options.trainer)
    scheduler = scheduler or study_scheduler(storage, options, study, config)
    display = ProgressDisplay(console, live=options.live)
    with display:
        evaluate = CrossValidation(
            definition,
            dataset,
            repeated_folds(
                dataset.y_train, definition.protocol.folds, config.split_seeds, dataset.task
            ),
            epochs=config.epochs,
            base_seed=config.fold_seed,
            device=device,
            strategy=strategy,
            listener=display,
        )
        display.study_started(
            config.study_name,
            definition.grid_size,
            len(scheduler.grid_state().complete),
            config.n_folds,
            config.mean_epochs,
            config.task.metric_label,
        )
        together = strategy.trains_together
        claim_size = batch_size(options, config, dataset, device, console) if together else 1
        report = TrialRunner(
            scheduler,
            evaluate,
            evaluate_batch=evaluate.evaluate_batch if together else None,
            claim_size=claim_size,
            listener=display,
        ).run()
    if report.state is not None:
        scheduler.ensure_complete(report.state)
    return report


def batch_size(
    options: WorkerOptions,
    config: StudyConfig,
    dataset: Dataset,
    device: str,
    console: Console,
) -> int:
    """Grid points to train together: ``--pack``, capped by the GPU's free memory."""
    from tuner.training import device_point_limit

    limit = device_point_limit(
        config.definition,
        config.n_folds,
        len(dataset.y_train),
        device,
        options.gpu,
    )
    if limit is None or limit >= options.pack:
        return options.pack
    console.print(
        f"{config.study_name}: --pack {options.pack} capped to {limit} grid point(s), "
        f"what fits in the free memory of {device}",
        highlight=False,
    )
    return limit


@documented(WorkerOptions)
def work(
    names: str | Sequence[str] | None = None,
    *,
    console: Console | None = None,
    **options: Any,
) -> None:
    """Join existing studies and evaluate grid points until none is left: ``tuner worker``.

        Everything but the storage comes from the study itself; the data is checked against
        the study's fingerprint before any point is claimed. Read the results afterwards
        with :func:`tuner.load_results`.

        Args:
            names: Studies to work on (default, or ``"all"``: every tuner study).
            console: Where messages and progress go (default: standard output).
            **options: Any option of ``tuner worker`` by its field name (see
                :class:`WorkerOptions`):
    OPTIONS

        Raises:
            TunerError: An unknown study or option, a value out of bounds, a storage that does
                not exist, data that differs from the study's, grid points that keep failing.
            KeyboardInterrupt: Interrupted; the running grid point is given back.
    """
    check_known(options, WorkerOptions)
    chosen = WorkerOptions.take(options)
    backend = select_backend(chosen.backend, load=True)
    quiet_optuna(chosen.verbose)
    run_worker(names_list(names), chosen, backend, output(console))


def run_worker(names: list[str], options: WorkerOptions, backend: str, console: Console) -> None:
    """Work every named study (or all tuner studies) to the end, then return.

    ``backend`` is the Keras backend already selected for this process.
    """
    from tuner.training import configure_device

    storage = open_storage(
        options.storage_url, heartbeat_interval=options.heartbeat_interval, must_exist=True
    )
    loaded = load_studies(storage, names)
    chosen = [config.study_name for _, config in loaded]
    for _, config in loaded:
        check_backend(config, backend, mix_backends=options.mix_backends)
    schedulers = [study_scheduler(storage, options, study, config) for study, config in loaded]
    # Announced before the slow part of start-up (data, the framework's import), so that
    # workers started together (compose --scale, a fleet) count each other in their first
    # fair shares. An announcement this worker never refreshes lapses after the grace period.
    for scheduler in schedulers:
        try:
            scheduler.announce()
        except Exception as exc:  # the runner announces again, with retries
            log.warning("could not announce this worker early: %s", exc)
    try:
        data = DataCache()
        # Check every study's data before claiming anything, so a bad mount fails fast.
        datasets = [
            data.verified(config.dataset, config.data_fingerprint, config.study_name)
            for _, config in loaded
        ]
        device = configure_device(options.threads, options.gpu, options.compile_cache)
    except BaseException:
        _retire(schedulers)
        raise
    console.print(
        f"worker on {mask_password(options.storage_url)}, device {device}: {', '.join(chosen)}",
        highlight=False,
    )
    for (study, config), dataset, scheduler in zip(loaded, datasets, schedulers, strict=True):
        report = work_study(storage, options, study, config, dataset, device, console, scheduler)
        state = report.state
        complete = len(state.complete) if state else 0
        failed = sum(state.failures.values()) + sum(state.stale.values()) if state else 0
        console.print(
            f"{config.study_name}: grid done: {complete}/{config.definition.grid_size} complete, "
            f"{failed} failed attempt(s); this worker evaluated {report.evaluated}",
            highlight=False,
        )


def _retire(schedulers: list[GridScheduler]) -> None:
    for scheduler in schedulers:
        try:
            scheduler.retire()
        except Exception as exc:
            log.warning("could not withdraw this worker's announcement: %s", exc)
