"""The `tuner` command: parses options and delegates; user errors become one clean line."""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

# TensorFlow's C++ start-up chatter would bury the progress display.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import typer
from rich.console import Console
from rich.table import Table

from tuner.errors import TunerError, WorkerInterrupted
from tuner.study import TRAINERS, load_definitions, select

if TYPE_CHECKING:
    from tuner.commands import WorkerOptions

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    help="Grid-search hyperparameter tuning of Keras MLPs, as an Optuna service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(highlight=False)
error_console = Console(stderr=True, highlight=False)

StudiesOption = Annotated[
    Path | None,
    typer.Option(
        "--studies",
        help="Folder of study definition files (*.toml). "
        "Default: $TUNER_STUDIES, else the project's studies/ folder.",
        file_okay=False,
    ),
]
StorageOption = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help="Optuna storage URL. Default: $TUNER_STORAGE, else sqlite:///tuner.db.",
        show_default=False,
    ),
]


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Print user errors as one line and exit non-zero, with no traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except TunerError as exc:
            error_console.print(f"error: {exc}", soft_wrap=True, markup=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            error_console.print("interrupted: the current grid point will be re-run on relaunch")
            raise typer.Exit(130) from None
        except WorkerInterrupted as exc:
            error_console.print(f"stopped by {exc}: the current grid point will be re-run")
            raise typer.Exit(128 + exc.signum) from None

    return wrapper


def _quiet_libraries(verbose: bool) -> None:
    import optuna

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _use_backend(backend: str | None) -> str:
    """Select the Keras backend before anything imports Keras; TensorFlow loads quietly."""
    from tuner.training import import_backend_quietly, use_backend

    chosen = use_backend(backend)
    import_backend_quietly()
    return chosen


def _worker_options(
    storage: str | None,
    heartbeat_interval: int,
    max_attempts: int,
    max_stale_attempts: int,
    threads: int | None,
    gpu: int | None,
    trainer: str,
    backend: str,
    mix_backends: bool,
    live: bool = True,
) -> WorkerOptions:
    from tuner.commands import WorkerOptions
    from tuner.storages import resolve_url

    if trainer not in TRAINERS:
        raise TunerError(f"unknown --trainer '{trainer}'; choose one of {', '.join(TRAINERS)}")
    return WorkerOptions(
        storage_url=resolve_url(storage),
        heartbeat_interval=heartbeat_interval,
        max_attempts=max_attempts,
        max_stale_attempts=max_stale_attempts,
        threads=threads,
        gpu=gpu,
        live_progress=live,
        trainer=trainer,
        backend=backend,
        mix_backends=mix_backends,
    )


@app.command()
@user_errors
def variants(studies: StudiesOption = None) -> None:
    """List every study definition: layers, regularisation and grid size."""
    definitions = load_definitions(studies)
    table = Table(title="study definitions")
    for column in ("variant", "layers", "regularisation", "units per layer", "points"):
        table.add_column(column, no_wrap=column != "units per layer")
    for definition in definitions.values():
        grid = " x ".join(
            "{" + ",".join(map(str, values)) + "}" for values in definition.grid.values()
        )
        table.add_row(
            definition.name,
            str(definition.n_layers),
            definition.regularisation,
            grid,
            str(definition.grid_size),
        )
    console.print(table)
    protocols = {d.protocol for d in definitions.values()}
    for p in protocols:
        users = [d.name for d in definitions.values() if d.protocol == p]
        scope = "all variants" if len(protocols) == 1 else ", ".join(users)
        console.print(
            f"protocol ({scope}): {p.epochs} epochs, batch {p.batch_size}, {p.folds}-fold CV, "
            f"{p.optimizer} lr {p.learning_rate:g}"
        )


HeartbeatOption = Annotated[
    int, typer.Option(help="Seconds between heartbeats of a running trial.", min=1)
]
MaxAttemptsOption = Annotated[
    int, typer.Option(help="Failed attempts per grid point before giving up on it.", min=1)
]
MaxStaleAttemptsOption = Annotated[
    int,
    typer.Option(
        help="Attempts per grid point whose worker vanished (SIGKILL, OOM, a lost or "
        "preempted machine) before giving up on it.",
        min=1,
    ),
]
ThreadsOption = Annotated[
    int | None, typer.Option(help="TensorFlow threads per worker process.", min=1)
]
GpuOption = Annotated[
    int | None,
    typer.Option(help="Train on this GPU index (default: CUDA_VISIBLE_DEVICES' first).", min=0),
]
VerboseOption = Annotated[bool, typer.Option(help="Log more.")]
TrainerOption = Annotated[
    str,
    typer.Option(
        help="packed: a grid point's folds trained together as one model; fast: one fold "
        "at a time, whole epochs in one TensorFlow graph with fused Adam; keras: plain "
        "model.fit (the reference)."
    ),
]
BackendOption = Annotated[
    str | None,
    typer.Option(
        help="Keras backend: tensorflow or jax (needs pip install 'tuner[jax]'). "
        "Default: $KERAS_BACKEND, else tensorflow.",
        show_default=False,
    ),
]
MixBackendsOption = Annotated[
    bool,
    typer.Option(help="Let a study created on one backend be trained on another."),
]
OutOption = Annotated[Path, typer.Option(help="Folder for the report.", file_okay=False)]


@app.command()
@user_errors
def launch(
    variant: Annotated[
        list[str],
        typer.Option("--variant", "-v", help="Variant to run (repeatable); 'all' runs every one."),
    ],
    dataset: Annotated[
        str,
        typer.Option(
            help="mnist, fashion-mnist, a .npz (x_train, y_train, x_test, y_test) "
            "or a folder of IDX files."
        ),
    ] = "mnist",
    epochs: Annotated[
        int | None, typer.Option(help="Epochs per fold (default: the study file's, 20).")
    ] = None,
    subset: Annotated[
        int | None,
        typer.Option(help="Train on a fixed, seeded, class-stratified sample of N images."),
    ] = None,
    storage: StorageOption = None,
    study_name: Annotated[
        str | None, typer.Option(help="Study name (default: the variant's name).")
    ] = None,
    studies: StudiesOption = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Local worker processes; 0 only creates the studies and prints how to "
            "start workers.",
            min=0,
        ),
    ] = 1,
    heartbeat_interval: HeartbeatOption = 10,
    max_attempts: MaxAttemptsOption = 3,
    max_stale_attempts: MaxStaleAttemptsOption = 6,
    threads: ThreadsOption = None,
    gpu: GpuOption = None,
    report: Annotated[
        bool, typer.Option(help="End with `tuner report` for the variants launched.")
    ] = True,
    out: OutOption = Path("reports"),
    trainer: TrainerOption = TRAINERS[0],
    backend: BackendOption = None,
    mix_backends: MixBackendsOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Create or resume each variant's study and evaluate its whole grid.

    Example: tuner launch --variant 2layer --dataset fashion-mnist --epochs 2 --subset 3000
    """
    chosen_backend = _use_backend(backend)
    from tuner.commands import LaunchOptions
    from tuner.commands import launch as run_launch
    from tuner.data import DatasetSpec

    _quiet_libraries(verbose)
    chosen = select(load_definitions(studies), variant)
    options = LaunchOptions(
        dataset=DatasetSpec.parse(dataset, subset),
        worker=_worker_options(
            storage,
            heartbeat_interval,
            max_attempts,
            max_stale_attempts,
            threads,
            gpu,
            trainer,
            chosen_backend,
            mix_backends,
        ),
        epochs=epochs,
        study_name=study_name,
        workers=workers,
        report_dir=out if report else None,
    )
    run_launch(chosen, options, console)


@app.command()
@user_errors
def worker(
    variant: Annotated[
        list[str] | None,
        typer.Option("--variant", "-v", help="Study of this variant (repeatable); 'all'."),
    ] = None,
    study_name: Annotated[
        list[str] | None, typer.Option(help="Study to work on, by name (repeatable).")
    ] = None,
    storage: StorageOption = None,
    heartbeat_interval: HeartbeatOption = 10,
    max_attempts: MaxAttemptsOption = 3,
    max_stale_attempts: MaxStaleAttemptsOption = 6,
    threads: ThreadsOption = None,
    gpu: GpuOption = None,
    live: Annotated[
        bool, typer.Option(help="Live progress bars when on a terminal.", hidden=True)
    ] = True,
    trainer: TrainerOption = TRAINERS[0],
    backend: BackendOption = None,
    mix_backends: MixBackendsOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Join existing studies and evaluate grid points until none is left, then exit 0.

    Everything but the storage comes from the study itself. Default: every tuner study.
    Example: TUNER_STORAGE=postgresql+psycopg://tuner:PW@db/tuner tuner worker --variant all
    """
    chosen_backend = _use_backend(backend)
    from tuner.commands import run_worker

    _quiet_libraries(verbose)
    options = _worker_options(
        storage,
        heartbeat_interval,
        max_attempts,
        max_stale_attempts,
        threads,
        gpu,
        trainer,
        chosen_backend,
        mix_backends,
        live=live,
    )
    run_worker([*(variant or []), *(study_name or [])], options, console)


@app.command()
@user_errors
def status(storage: StorageOption = None) -> None:
    """Show every study: grid size, complete, running (where, since when), failed, best, ETA."""
    from tuner.reporting import render_status, study_status
    from tuner.storages import open_storage, resolve_url
    from tuner.study import load, tuner_study_names

    _quiet_libraries(False)
    opened = open_storage(resolve_url(storage), must_exist=True)
    names = tuner_study_names(opened)
    if not names:
        console.print("no tuner studies in this storage yet")
        return
    render_status(console, [study_status(opened, load(opened, name)[0]) for name in names])


@app.command()
@user_errors
def report(
    variant: Annotated[
        list[str] | None,
        typer.Option(
            "--variant", "-v", help="Study to report (repeatable); default: all complete."
        ),
    ] = None,
    storage: StorageOption = None,
    out: OutOption = Path("reports"),
    refit: Annotated[bool, typer.Option(help="Retrain the winners even if already done.")] = False,
    backend: BackendOption = None,
) -> None:
    """Retrain each winner, test it, and write the comparison: tables, pictures, HTML."""
    _use_backend(backend)
    from tuner.reporting import build_report
    from tuner.storages import resolve_url

    _quiet_libraries(False)
    build_report(variant or [], resolve_url(storage), out, refit, console)


@app.command()
@user_errors
def dashboard(
    storage: StorageOption = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; the dashboard has no login, keep it local.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.", min=1, max=65535)] = 8080,
    artifacts: Annotated[
        Path | None,
        typer.Option(help="Artifact folder (default: $TUNER_ARTIFACTS, else beside the DB)."),
    ] = None,
) -> None:
    """Serve optuna-dashboard on the storage, with tuner's pictures as artifacts."""
    from tuner.reporting import serve
    from tuner.storages import resolve_url

    _quiet_libraries(False)
    try:
        serve(resolve_url(storage), host, port, artifacts, console)
    except OSError as exc:
        raise TunerError(f"cannot serve on {host}:{port}: {exc.strerror}; try --port") from None


def main() -> None:
    """Entry point of the ``tuner`` command."""
    # A process started in the background by a non-interactive shell (nohup, CI runners)
    # inherits SIGINT ignored; tuner's contract is that SIGINT stops it cleanly (exit 130).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    app(prog_name="tuner")


if __name__ == "__main__":
    sys.exit(main())
