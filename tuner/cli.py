"""The `tuner` command: flags parsed into the option records, one call into :mod:`tuner.api`.

Every flag is derived from its declaration in the option records (name, type, default,
help, environment variable); the bounds are checked once, when the record is made, so a
bad value is the same one-line error here and in Python. User errors
(:class:`~tuner.errors.TunerError`) become one clean line and an exit code.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import os
import signal
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, get_type_hints

import typer
from rich.console import Console
from rich.markup import escape

from tuner import api
from tuner.api import (
    DATA_OPTIONS,
    LAUNCH_ACCEPTS,
    REPORT_WORKER_OPTIONS,
    Accepts,
    DashboardOptions,
    LaunchOptions,
    ReportOptions,
    WorkerOptions,
    declaration,
)
from tuner.errors import TunerError, WorkerInterrupted

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    help="Grid-search hyperparameter tuning of Keras MLPs, as an Optuna service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
PIPE_WIDTH = 160
"""Columns of output that is not a terminal (a file, a pipe, CI's log), unless $COLUMNS
says otherwise: rich's 80 would wrap the ranked grid's tables mid-number."""


def _console(stderr: bool = False) -> Console:
    shown = Console(stderr=stderr, highlight=False)
    if not shown.is_terminal and "COLUMNS" not in os.environ:
        shown.width = PIPE_WIDTH
    return shown


console = _console()
error_console = _console(stderr=True)


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Print user errors as one line and exit non-zero, with no traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except TunerError as exc:
            error_console.print(f"error: {exc}", soft_wrap=True, markup=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as exc:
            error_console.print(f"interrupted: {_given_back(exc)}")
            raise typer.Exit(130) from None
        except WorkerInterrupted as exc:
            error_console.print(f"stopped by {exc}: {_given_back(exc)}")
            raise typer.Exit(128 + exc.signum) from None

    return wrapper


def _given_back(exc: BaseException) -> str:
    """The interruption's summary: how many grid points went back, and how to resume."""
    count = getattr(exc, "given_back", None)
    points = f"{count} grid point(s) given back" if count else "grid points given back"
    return f"{points}; run the same command to resume (finished folds are kept)"


def flags(*accepts: Accepts) -> list[inspect.Parameter]:
    """One Typer option per accepted record field, from the field's declaration."""
    parameters = []
    for accept in accepts:
        record, only = accept if isinstance(accept, tuple) else (accept, None)
        types = get_type_hints(record)
        for spec in dataclasses.fields(record):
            if only is not None and spec.name not in only:
                continue
            declared = declaration(spec)
            flag = declared.flag_of(spec.name)
            is_switch = types[spec.name] is bool
            option = typer.Option(
                spec.default,
                f"{flag}/--no-{flag[2:]}" if is_switch else flag,
                # Help is text, not markup: "pip install 'tuner[jax]'" keeps its "[jax]".
                help=escape(declared.help),
                envvar=declared.envvar,
                hidden=declared.hidden,
                show_default=spec.default is not None,
            )
            keyword = inspect.Parameter.KEYWORD_ONLY
            parameters.append(
                inspect.Parameter(spec.name, keyword, default=option, annotation=types[spec.name])
            )
    return parameters


def selector(name: str, flag: str, help: str, *, required: bool = False) -> inspect.Parameter:
    """A repeatable option that names variants or studies (not an option record's field)."""
    short = ["-v"] if flag == "--variant" else []
    default = typer.Option(... if required else None, flag, *short, help=help)
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=list[str] if required else list[str] | None,
    )


def command(
    name: str, summary: str, parameters: list[inspect.Parameter]
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register ``run`` as the command ``name``, taking ``parameters`` as keywords."""

    def register(run: Callable[..., None]) -> Callable[..., None]:
        def invoked(**values: Any) -> None:
            run(**values)

        invoked.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        invoked.__annotations__ = {p.name: p.annotation for p in parameters}
        invoked.__name__ = invoked.__qualname__ = name
        invoked.__doc__ = summary
        app.command(name)(user_errors(invoked))
        return run

    return register


def _log_to_terminal(verbose: bool) -> None:
    # The process's log handler is the application's choice, so it is made here and
    # not in the API, which a notebook or another program may call.
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")


STORAGE = (WorkerOptions, ("storage",))


@command(
    "variants",
    "List every study definition: layers, regularisation and grid size.",
    flags((LaunchOptions, ("studies_dir",))),
)
def variants(studies_dir: str | None) -> None:
    api.variants(studies_dir).render(console)


@command(
    "launch",
    "Create or resume each variant's study and evaluate its whole grid.\n\n"
    "Example: tuner launch --variant 2layer --dataset fashion-mnist --epochs 2 --subset 3000",
    [
        selector(
            "variant",
            "--variant",
            "Variant to run (repeatable); 'all' runs every one.",
            required=True,
        ),
        *flags(*LAUNCH_ACCEPTS),
    ],
)
def launch(variant: list[str], **options: Any) -> None:
    _log_to_terminal(options["verbose"])
    api.launch(variant, console=console, **options)


@command(
    "data",
    "Read a data set as launch would and show what tuner makes of it: the task, its "
    "classes, each column's encoding, the training and test rows. Trains nothing.\n\n"
    "Example: tuner data --dataset table.csv --target label",
    flags((LaunchOptions, DATA_OPTIONS)),
)
def data(**options: Any) -> None:
    _log_to_terminal(False)
    api.describe_data(**options).render(console)


@command(
    "worker",
    "Join existing studies and evaluate grid points until none is left, then exit 0.\n\n"
    "Everything but the storage comes from the study itself. Default: every tuner study.\n"
    "Example: TUNER_STORAGE=postgresql+psycopg://tuner:PW@db/tuner tuner worker --variant all",
    [
        selector("variant", "--variant", "Study of this variant (repeatable); 'all'."),
        selector("study_name", "--study-name", "Study to work on, by name (repeatable)."),
        *flags(WorkerOptions),
    ],
)
def worker(variant: list[str] | None, study_name: list[str] | None, **options: Any) -> None:
    _log_to_terminal(options["verbose"])
    api.work([*(variant or []), *(study_name or [])], console=console, **options)


@command(
    "status",
    "Show every study: grid size, complete, running (where, since when), failed, best, ETA.",
    flags(STORAGE),
)
def status(storage: str | None) -> None:
    _log_to_terminal(False)
    api.status(storage).render(console)


@command(
    "delete",
    "Remove studies (their trials and records) from the storage, after asking.\n\n"
    "Example: tuner delete 2layer --yes",
    [
        inspect.Parameter(
            "study",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Argument(..., help="Study to delete (one or more, by name)."),
            annotation=list[str],
        ),
        inspect.Parameter(
            "yes",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(False, "--yes", help="Do not ask: confirm in advance."),
            annotation=bool,
        ),
        inspect.Parameter(
            "force",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(
                False, "--force", help="Delete even while some of its trials are running."
            ),
            annotation=bool,
        ),
        *flags(STORAGE),
    ],
)
def delete(study: list[str], yes: bool, force: bool, storage: str | None) -> None:
    _log_to_terminal(False)
    asked = yes or typer.confirm(api.describe_deletion(study, storage), default=False)
    if not asked:
        raise TunerError("nothing deleted")
    api.delete(study, storage=storage, yes=True, force=force, console=console)


@command(
    "report",
    "Retrain each winner, test it, and write the comparison: tables, pictures, HTML.",
    [
        selector("variant", "--variant", "Study to report (repeatable); default: all complete."),
        *flags(ReportOptions, (WorkerOptions, REPORT_WORKER_OPTIONS)),
    ],
)
def report(variant: list[str] | None, **options: Any) -> None:
    _log_to_terminal(False)
    api.report(variant, console=console, **options)


@command(
    "dashboard",
    "Serve optuna-dashboard on the storage, with tuner's pictures as artifacts.",
    flags(STORAGE, DashboardOptions),
)
def dashboard(storage: str | None, **options: Any) -> None:
    _log_to_terminal(False)
    api.serve_dashboard(storage, console=console, **options)


def main() -> None:
    """Entry point of the ``tuner`` command."""
    # A process started in the background by a non-interactive shell (nohup, CI runners)
    # inherits SIGINT ignored; tuner's contract is that SIGINT stops it cleanly (exit 130).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    app(prog_name="tuner")


if __name__ == "__main__":
    main()
