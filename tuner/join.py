"""`tuner worker`: join studies that already exist and evaluate grid points until none is left.

A worker needs nothing but the storage URL and access to the data: the dataset spec,
epochs and definition come from the study itself, and the data is fingerprinted and
compared with the study's record before a single trial is claimed.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from rich.console import Console

from tuner import study as studies
from tuner.data import DataCache, Dataset
from tuner.progress import ProgressDisplay
from tuner.runtime import configure_tensorflow
from tuner.storage import mask_password, open_storage
from tuner.worker import GridWorker, WorkerReport, ensure_complete


@dataclass(frozen=True)
class WorkerOptions:
    storage_url: str
    heartbeat_interval: int = 10
    max_attempts: int = 3
    threads: int | None = None
    gpu: int | None = None
    live_progress: bool = True
    trainer: str = "packed"


def work_study(
    storage: optuna.storages.RDBStorage,
    options: WorkerOptions,
    study: optuna.Study,
    config: studies.StudyConfig,
    dataset: Dataset,
    device: str,
    console: Console,
) -> WorkerReport:
    """Evaluate grid points of one study until every point is done, with progress shown."""
    display = ProgressDisplay(console, live=options.live_progress)
    with display:
        worker = GridWorker(
            storage,
            options.storage_url,
            study,
            config,
            dataset,
            device=device,
            max_attempts=options.max_attempts,
            display=display,
            trainer=options.trainer,
        )
        state = worker.grid_state()
        display.study_started(
            config.study_name,
            config.definition.grid_size,
            len(state.complete),
            config.definition.protocol.folds,
            config.epochs,
        )
        report = worker.run()
    ensure_complete(study, config, report, options.max_attempts)
    return report


def join(names: list[str], options: WorkerOptions, console: Console) -> None:
    """Work every named study (or all tuner studies) to the end, then return."""
    storage = open_storage(
        options.storage_url, heartbeat_interval=options.heartbeat_interval, must_exist=True
    )
    chosen = studies.resolve_study_names(storage, names)
    loaded = [studies.load(storage, name) for name in chosen]
    data = DataCache()
    # Check every study's data before claiming anything, so a bad mount fails fast.
    datasets = [
        data.verified(config.dataset, config.data_fingerprint, config.study_name)
        for _, config in loaded
    ]
    device = configure_tensorflow(options.threads, options.gpu)
    console.print(
        f"worker on {mask_password(options.storage_url)}, device {device}: {', '.join(chosen)}",
        highlight=False,
    )
    for (study, config), dataset in zip(loaded, datasets, strict=True):
        report = work_study(storage, options, study, config, dataset, device, console)
        state = report.state
        complete = len(state.complete) if state else 0
        failed = sum(state.failures.values()) if state else 0
        console.print(
            f"{config.study_name}: grid done: {complete}/{config.definition.grid_size} complete, "
            f"{failed} failed attempt(s); this worker evaluated {report.evaluated}",
            highlight=False,
        )
