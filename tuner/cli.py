"""The `tuner` command: parses options and calls the Python API (:mod:`tuner.api`).

Each command is one call into the API plus printing what it returns; user errors
(:class:`~tuner.errors.TunerError`) become one clean line and an exit code.
"""

from __future__ import annotations

import functools
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from tuner.commands._options import DEFAULT_PACK
from tuner.errors import TunerError, WorkerInterrupted
from tuner.study import TRAINERS

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


def _log_to_terminal(verbose: bool) -> None:
    # The process's log handler is the application's choice, so it is made here and
    # not in the API, which a notebook or another program may call.
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")


@app.command()
@user_errors
def variants(studies: StudiesOption = None) -> None:
    """List every study definition: layers, regularisation and grid size."""
    from tuner import api

    api.variants(studies).render(console)


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
        help="grid: many grid points with all their folds trained as one model (see "
        "--pack); packed: one grid point at a time, its folds trained together as one "
        "model; fast: one fold at a time, whole epochs in one graph with fused Adam; "
        "keras: plain model.fit (the reference).",
        envvar="TUNER_TRAINER",
    ),
]
PackOption = Annotated[
    int,
    typer.Option(
        help="With --trainer grid: the most grid points one worker trains together (each "
        "worker takes no more than a fair share of what is waiting; on a GPU, no more "
        "than fit in its free memory).",
        min=1,
        envvar="TUNER_PACK",
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
    pack: PackOption = DEFAULT_PACK,
    backend: BackendOption = None,
    mix_backends: MixBackendsOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Create or resume each variant's study and evaluate its whole grid.

    Example: tuner launch --variant 2layer --dataset fashion-mnist --epochs 2 --subset 3000
    """
    from tuner import api

    _log_to_terminal(verbose)
    api.launch(
        variant,
        dataset,
        epochs=epochs,
        subset=subset,
        storage=storage,
        study_name=study_name,
        studies_dir=studies,
        workers=workers,
        trainer=trainer,
        pack=pack,
        backend=backend,
        threads=threads,
        gpu=gpu,
        heartbeat_interval=heartbeat_interval,
        max_attempts=max_attempts,
        max_stale_attempts=max_stale_attempts,
        mix_backends=mix_backends,
        report=report,
        out=out,
        console=console,
        verbose=verbose,
    )


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
    pack: PackOption = DEFAULT_PACK,
    backend: BackendOption = None,
    mix_backends: MixBackendsOption = False,
    expected_workers: Annotated[
        int,
        typer.Option(
            help="Workers starting on these studies together, this one included: with "
            "--trainer grid, a claim takes at most 1/N of what is waiting even before the "
            "others have announced themselves (tuner launch --workers N sets it).",
            min=1,
        ),
    ] = 1,
    verbose: VerboseOption = False,
) -> None:
    """Join existing studies and evaluate grid points until none is left, then exit 0.

    Everything but the storage comes from the study itself. Default: every tuner study.
    Example: TUNER_STORAGE=postgresql+psycopg://tuner:PW@db/tuner tuner worker --variant all
    """
    from tuner import api

    _log_to_terminal(verbose)
    api.work(
        [*(variant or []), *(study_name or [])],
        storage=storage,
        trainer=trainer,
        pack=pack,
        backend=backend,
        threads=threads,
        gpu=gpu,
        heartbeat_interval=heartbeat_interval,
        max_attempts=max_attempts,
        max_stale_attempts=max_stale_attempts,
        mix_backends=mix_backends,
        expected_workers=expected_workers,
        live=live,
        console=console,
        verbose=verbose,
    )


@app.command()
@user_errors
def status(storage: StorageOption = None) -> None:
    """Show every study: grid size, complete, running (where, since when), failed, best, ETA."""
    from tuner import api

    _log_to_terminal(False)
    api.status(storage).render(console)


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
    from tuner import api

    _log_to_terminal(False)
    api.report(variant, storage=storage, out=out, refit=refit, backend=backend, console=console)


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
    from tuner import api

    _log_to_terminal(False)
    api.serve_dashboard(storage, host=host, port=port, artifacts=artifacts, console=console)


def main() -> None:
    """Entry point of the ``tuner`` command."""
    # A process started in the background by a non-interactive shell (nohup, CI runners)
    # inherits SIGINT ignored; tuner's contract is that SIGINT stops it cleanly (exit 130).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    app(prog_name="tuner")


if __name__ == "__main__":
    sys.exit(main())
