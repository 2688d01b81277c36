"""`tuner worker`: join studies that already exist and evaluate grid points until none is left.

A worker needs nothing but the storage URL and access to the data: the dataset spec,
epochs and definition come from the study itself, and the data is fingerprinted and
compared with the study's record before a single trial is claimed.
"""

from __future__ import annotations

import optuna
from rich.console import Console

from tuner import study as studies
from tuner.commands._options import WorkerOptions
from tuner.data import DataCache, Dataset, stratified_folds
from tuner.progress import ProgressDisplay
from tuner.scheduling import GridScheduler, RunReport, TrialRunner
from tuner.storages import mask_password, open_storage


def work_study(
    storage: optuna.storages.RDBStorage,
    options: WorkerOptions,
    study: optuna.Study,
    config: studies.StudyConfig,
    dataset: Dataset,
    device: str,
    console: Console,
) -> RunReport:
    """Evaluate grid points of one study until every point is done, with progress shown."""
    from tuner.training import CrossValidation

    definition = config.definition
    scheduler = GridScheduler(
        storage,
        options.storage_url,
        study,
        definition,
        max_attempts=options.max_attempts,
        max_stale_attempts=options.max_stale_attempts,
    )
    display = ProgressDisplay(console, live=options.live_progress)
    with display:
        evaluate = CrossValidation(
            definition,
            dataset,
            stratified_folds(dataset.y_train, definition.protocol.folds, config.fold_seed),
            epochs=config.epochs,
            base_seed=config.fold_seed,
            device=device,
            trainer=options.trainer,
            listener=display,
        )
        display.study_started(
            config.study_name,
            definition.grid_size,
            len(scheduler.grid_state().complete),
            definition.protocol.folds,
            config.epochs,
        )
        together = options.trainer == "grid"
        report = TrialRunner(
            scheduler,
            evaluate,
            evaluate_batch=evaluate.evaluate_batch if together else None,
            claim_size=options.pack if together else 1,
            listener=display,
        ).run()
    if report.state is not None:
        scheduler.ensure_complete(report.state)
    return report


def run_worker(names: list[str], options: WorkerOptions, console: Console) -> None:
    """Work every named study (or all tuner studies) to the end, then return."""
    from tuner.training import configure_device

    storage = open_storage(
        options.storage_url, heartbeat_interval=options.heartbeat_interval, must_exist=True
    )
    chosen = studies.resolve_study_names(storage, names)
    loaded = [studies.load(storage, name) for name in chosen]
    for _, config in loaded:
        studies.check_backend(config, options.backend, mix_backends=options.mix_backends)
    data = DataCache()
    # Check every study's data before claiming anything, so a bad mount fails fast.
    datasets = [
        data.verified(config.dataset, config.data_fingerprint, config.study_name)
        for _, config in loaded
    ]
    device = configure_device(options.threads, options.gpu)
    console.print(
        f"worker on {mask_password(options.storage_url)}, device {device}: {', '.join(chosen)}",
        highlight=False,
    )
    for (study, config), dataset in zip(loaded, datasets, strict=True):
        report = work_study(storage, options, study, config, dataset, device, console)
        state = report.state
        complete = len(state.complete) if state else 0
        failed = sum(state.failures.values()) + sum(state.stale.values()) if state else 0
        console.print(
            f"{config.study_name}: grid done: {complete}/{config.definition.grid_size} complete, "
            f"{failed} failed attempt(s); this worker evaluated {report.evaluated}",
            highlight=False,
        )
