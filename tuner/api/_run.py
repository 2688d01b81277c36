"""Training from Python: launch studies and evaluate their grids, or join them as a worker."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from tuner.api._setup import names_list, output, quiet_optuna, select_backend
from tuner.api._variants import VariantsArgument, resolve_variants
from tuner.commands import DEFAULT_PACK, LaunchOptions, WorkerOptions, run_worker
from tuner.commands import launch as launch_command
from tuner.data import DatasetSpec
from tuner.errors import TunerError
from tuner.reporting import Results, StudyResults
from tuner.scheduling import DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_STALE_ATTEMPTS
from tuner.storages import DEFAULT_HEARTBEAT_SECONDS, resolve_url
from tuner.study import TRAINERS


def _worker_options(
    storage: str | None,
    *,
    heartbeat_interval: int,
    max_attempts: int,
    max_stale_attempts: int,
    threads: int | None,
    gpu: int | None,
    trainer: str,
    pack: int,
    backend: str,
    mix_backends: bool,
    live: bool,
    expected_workers: int = 1,
) -> WorkerOptions:
    return WorkerOptions(
        storage_url=resolve_url(storage),
        heartbeat_interval=heartbeat_interval,
        max_attempts=max_attempts,
        max_stale_attempts=max_stale_attempts,
        threads=threads,
        gpu=gpu,
        live_progress=live,
        trainer=trainer,
        pack=pack,
        backend=backend,
        mix_backends=mix_backends,
        expected_workers=expected_workers,
    )


def _check_trainer(trainer: str) -> None:
    if trainer not in TRAINERS:
        raise TunerError(f"unknown --trainer '{trainer}'; choose one of {', '.join(TRAINERS)}")


def _check_pack(pack: int) -> None:
    if pack < 1:
        raise TunerError(f"--pack must be at least 1 grid point, got {pack}")


def launch(
    variants: VariantsArgument,
    dataset: str | Path = "mnist",
    *,
    epochs: int | None = None,
    subset: int | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    studies_dir: str | Path | None = None,
    workers: int = 1,
    trainer: str = TRAINERS[0],
    pack: int = DEFAULT_PACK,
    backend: str | None = None,
    threads: int | None = None,
    gpu: int | None = None,
    heartbeat_interval: int = DEFAULT_HEARTBEAT_SECONDS,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    max_stale_attempts: int = DEFAULT_MAX_STALE_ATTEMPTS,
    mix_backends: bool = False,
    report: bool = True,
    out: str | Path = "reports",
    console: Console | None = None,
    verbose: bool = False,
) -> Results:
    """Create (or resume) one study per variant and evaluate its whole grid: ``tuner launch``.

    Completed grid points are never trained again, so calling it again resumes. A study
    records its definition, dataset, data fingerprint and epochs; launching again under
    the same name with different ones is refused (pass ``study_name`` to start another).

    Example:
        ``tuner.launch("2layer", "fashion-mnist", subset=3000, epochs=2, report=False)``

    Args:
        variants: A variant or several: names of definition files (``"all"`` for every
            one) or definitions from :func:`tuner.define_variant`.
        dataset: ``mnist``, ``fashion-mnist``, a Keras-style ``.npz`` or a folder of
            IDX files.
        epochs: Epochs per fold (default: each definition's).
        subset: Train on a fixed, seeded, class-stratified sample of this many images.
        storage: Optuna storage URL (default: ``$TUNER_STORAGE``, else
            ``sqlite:///tuner.db``); PostgreSQL and MySQL for workers on many machines.
        study_name: Study name for a single variant (default: the variant's name).
        studies_dir: Folder of definition files for variant names (default:
            ``$TUNER_STUDIES``, else the project's ``studies/``).
        workers: Local worker processes; 0 only creates the studies.
        trainer: ``grid`` (the default: many points with all their folds trained
            together), ``packed`` (one point at a time, its folds together), ``fast``
            or ``keras``.
        pack: With ``grid``, the most grid points this worker trains together.
        backend: Keras backend, ``tensorflow`` or ``jax`` (default: ``$KERAS_BACKEND``,
            else TensorFlow); fixed for the process once Keras is imported.
        threads: Training threads per worker process.
        gpu: GPU index to train on (default: the first visible, else the CPU).
        heartbeat_interval: Seconds between heartbeats of a running trial.
        max_attempts: Failed attempts per grid point before it is given up.
        max_stale_attempts: Attempts per grid point whose worker vanished before it is
            given up.
        mix_backends: Let a study created on one backend be trained on another.
        report: End with :func:`tuner.report` for these studies.
        out: Folder of that report.
        console: Where messages and progress go (default: standard output; in Jupyter,
            the cell).
        verbose: Log more, Optuna's messages included.

    Returns:
        The studies' results by study name; ``.report`` holds the report, if written.

    Raises:
        TunerError: Anything the user can fix (an unknown variant, unreadable data, a
            storage that cannot be reached, a study created under other settings, grid
            points that keep failing), in the one line the CLI prints.
        KeyboardInterrupt: Interrupted; the running grid point is re-run on the next
            launch, its finished folds reused.
    """
    _check_trainer(trainer)
    _check_pack(pack)
    definitions = resolve_variants(variants, studies_dir)
    spec = DatasetSpec.parse(str(dataset), subset)
    chosen_backend = select_backend(backend, load=True)
    quiet_optuna(verbose)
    options = LaunchOptions(
        dataset=spec,
        worker=_worker_options(
            storage,
            heartbeat_interval=heartbeat_interval,
            max_attempts=max_attempts,
            max_stale_attempts=max_stale_attempts,
            threads=threads,
            gpu=gpu,
            trainer=trainer,
            pack=pack,
            backend=chosen_backend,
            mix_backends=mix_backends,
            live=True,
        ),
        epochs=epochs,
        study_name=study_name,
        workers=workers,
        report_dir=Path(out) if report else None,
    )
    created, written = launch_command(definitions, options, output(console))
    return Results(
        {config.study_name: StudyResults.of(study, config) for study, config in created},
        report=written,
    )


def work(
    names: str | Sequence[str] | None = None,
    *,
    storage: str | None = None,
    trainer: str = TRAINERS[0],
    pack: int = DEFAULT_PACK,
    backend: str | None = None,
    threads: int | None = None,
    gpu: int | None = None,
    heartbeat_interval: int = DEFAULT_HEARTBEAT_SECONDS,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    max_stale_attempts: int = DEFAULT_MAX_STALE_ATTEMPTS,
    mix_backends: bool = False,
    expected_workers: int = 1,
    live: bool = True,
    console: Console | None = None,
    verbose: bool = False,
) -> None:
    """Join existing studies and evaluate grid points until none is left: ``tuner worker``.

    Everything but the storage comes from the study itself; the data is checked against
    the study's fingerprint before any point is claimed. Read the results afterwards
    with :func:`tuner.load_results`.

    Args:
        names: Studies to work on (default, or ``"all"``: every tuner study).
        storage: Optuna storage URL (default: ``$TUNER_STORAGE``, else
            ``sqlite:///tuner.db``, which must exist).
        trainer: ``grid`` (the default: many points with all their folds trained
            together), ``packed`` (one point at a time, its folds together), ``fast``
            or ``keras``.
        pack: With ``grid``, the most grid points this worker trains together.
        backend: Keras backend, ``tensorflow`` or ``jax`` (default: ``$KERAS_BACKEND``,
            else TensorFlow).
        threads: Training threads.
        gpu: GPU index to train on (default: the first visible, else the CPU).
        heartbeat_interval: Seconds between heartbeats of a running trial.
        max_attempts: Failed attempts per grid point before it is given up.
        max_stale_attempts: Attempts per grid point whose worker vanished before it is
            given up.
        mix_backends: Train a study created on another backend anyway.
        expected_workers: Workers starting on these studies together (this one
            included): with ``grid``, a claim takes at most 1/N of what is waiting even
            before the others have announced themselves.
        live: Live progress bars where the console can show them.
        console: Where messages and progress go (default: standard output).
        verbose: Log more, Optuna's messages included.

    Raises:
        TunerError: An unknown study, a storage that does not exist, data that differs
            from the study's, grid points that keep failing.
        KeyboardInterrupt: Interrupted; the running grid point is given back.
    """
    _check_trainer(trainer)
    _check_pack(pack)
    if expected_workers < 1:
        raise TunerError(f"--expected-workers must be at least 1, got {expected_workers}")
    chosen_backend = select_backend(backend, load=True)
    quiet_optuna(verbose)
    options = _worker_options(
        storage,
        heartbeat_interval=heartbeat_interval,
        max_attempts=max_attempts,
        max_stale_attempts=max_stale_attempts,
        threads=threads,
        gpu=gpu,
        trainer=trainer,
        pack=pack,
        backend=chosen_backend,
        mix_backends=mix_backends,
        live=live,
        expected_workers=expected_workers,
    )
    run_worker(names_list(names), options, output(console))
