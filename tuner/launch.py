"""`tuner launch`: create (or resume) each variant's study and work it to the end."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console

from tuner import study as studies
from tuner.data import DatasetSpec, load_dataset
from tuner.definitions import StudyDefinition
from tuner.errors import TunerError
from tuner.progress import ProgressDisplay
from tuner.runtime import configure_tensorflow
from tuner.storage import mask_password, open_storage
from tuner.summary import ranked_points, render_ranking
from tuner.worker import GridWorker, ensure_complete


@dataclass(frozen=True)
class LaunchOptions:
    dataset: DatasetSpec
    storage_url: str
    epochs: int | None = None
    study_name: str | None = None
    heartbeat_interval: int = 10
    max_attempts: int = 3
    threads: int | None = None
    gpu: int | None = None


def launch(definitions: list[StudyDefinition], options: LaunchOptions, console: Console) -> None:
    """Create or resume one study per definition, evaluate its whole grid, print the ranking."""
    if options.study_name and len(definitions) > 1:
        raise TunerError("--study-name names one study: give exactly one --variant with it")
    if options.epochs is not None and options.epochs <= 0:
        raise TunerError(f"--epochs must be positive, got {options.epochs}")
    storage = open_storage(options.storage_url, heartbeat_interval=options.heartbeat_interval)
    device = configure_tensorflow(options.threads, options.gpu)
    dataset = load_dataset(options.dataset)
    fingerprint = dataset.fingerprint()
    console.print(
        f"storage {mask_password(options.storage_url)}; dataset {options.dataset.source} "
        f"({len(dataset.y_train)} training images); device {device}",
        highlight=False,
    )
    for definition in definitions:
        config = studies.StudyConfig(
            study_name=options.study_name or definition.name,
            definition=definition,
            dataset=options.dataset,
            data_fingerprint=fingerprint,
            epochs=options.epochs or definition.protocol.epochs,
        )
        study = studies.create_or_resume(storage, config)
        with ProgressDisplay(console) as display:
            worker = GridWorker(
                storage,
                options.storage_url,
                study,
                config,
                dataset,
                device=device,
                max_attempts=options.max_attempts,
                display=display,
            )
            state = worker.grid_state()
            display.study_started(
                config.study_name,
                definition.grid_size,
                len(state.complete),
                definition.protocol.folds,
                config.epochs,
            )
            report = worker.run()
        render_ranking(console, config.study_name, definition, ranked_points(study, definition))
        ensure_complete(study, config, report, options.max_attempts)
