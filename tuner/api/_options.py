"""Every option of every command, declared once: its type, default, help, bounds, variable.

Each option is one field of one record (:class:`WorkerOptions`, :class:`LaunchOptions`,
:class:`ReportOptions`, :class:`DashboardOptions`); the field's metadata (an
:class:`Option`) is the single declaration that everything else derives from: the CLI's
flags and help (:mod:`tuner.cli`), the Python API's keyword arguments and their
defaults, the validation (:meth:`validate`, one line per error, run once when a record is
made) and the argv of the local workers ``tuner launch --workers N`` spawns
(:meth:`WorkerOptions.worker_argv`). Adding an option means adding a field here and the
code that uses it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tuner.data import DEFAULT_TEST_FRACTION, TASKS
from tuner.errors import TunerError
from tuner.scheduling import DEFAULT_CURVE_INTERVAL
from tuner.stats import DEFAULT_ALPHA
from tuner.storages import DEFAULT_HEARTBEAT_SECONDS, resolve_url
from tuner.study import BACKENDS
from tuner.training import DEFAULT_STRATEGY, STRATEGY_NAMES

MAX_REPEATS = 100
"""The most repetitions of k-fold CV a study takes (``--repeats``)."""
MAX_FINAL_SEEDS = 100
"""The most final fits per winner (``--final-seeds``)."""
DEFAULT_PACK = 16
"""Grid points trained together by default (``--pack``): the study's 2layer grid fits in
one batch; larger grids split into several."""


@dataclass(frozen=True)
class Option:
    """How one record field appears to users, and what values it accepts.

    Attributes:
        help: One sentence for ``--help`` and the API docstring.
        flag: The CLI flag (default: ``--`` and the field name with dashes).
        envvar: An environment variable the CLI reads when the flag is absent.
        minimum: Smallest accepted number (inclusive).
        maximum: Largest accepted number (inclusive).
        choices: The accepted strings.
        forwarded: Passed on to the local workers ``launch --workers N`` starts.
        hidden: Left out of ``--help``.
    """

    help: str
    flag: str | None = None
    envvar: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    forwarded: bool = False
    hidden: bool = False

    def flag_of(self, name: str) -> str:
        """The CLI flag of the field ``name``."""
        return self.flag or "--" + name.replace("_", "-")

    def check(self, name: str, value: object) -> None:
        """Raise a one-line :class:`TunerError` when ``value`` breaks this option's bounds."""
        if value is None or isinstance(value, bool):
            return
        flag = self.flag_of(name)
        if self.choices is not None and value not in self.choices:
            from_env = self.envvar and os.environ.get(self.envvar)
            source = f" (from ${self.envvar})" if from_env else ""
            raise TunerError(
                f"unknown {flag} '{value}'{source}; choose one of {', '.join(self.choices)}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise TunerError(f"{flag} must be a finite number, got {value}")
        if isinstance(value, (int, float)):
            if self.minimum is not None and value < self.minimum:
                raise TunerError(f"{flag} must be at least {self.minimum}, got {value}")
            if self.maximum is not None and value > self.maximum:
                raise TunerError(f"{flag} must be at most {self.maximum}, got {value}")


def option(default: Any, help: str, **declaration: Any) -> Any:
    """A record field with its :class:`Option` declaration in the field's metadata."""
    return field(default=default, metadata={"option": Option(help, **declaration)})


R = TypeVar("R", bound="Options")


@dataclass(frozen=True)
class Options:
    """A record of options: validated once, when it is made."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field against its declaration; the first problem as one line."""
        for spec in dataclasses.fields(self):
            declaration(spec).check(spec.name, getattr(self, spec.name))

    @classmethod
    def take(cls: type[R], given: Mapping[str, Any]) -> R:
        """The record made of the entries of ``given`` that are its fields (the rest are
        left to other records); missing fields keep their defaults."""
        names = {spec.name for spec in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in given.items() if name in names})


def declaration(spec: dataclasses.Field[Any]) -> Option:
    """The :class:`Option` declared on a record's field."""
    declared = spec.metadata.get("option")
    if not isinstance(declared, Option):
        raise TypeError(f"field {spec.name} declares no Option")
    return declared


Accepts = type[Options] | tuple[type[Options], tuple[str, ...]]
"""A record whose options a call accepts: all of them, or (record, the names accepted)."""


def accepted_names(*accepts: Accepts) -> list[str]:
    """The option names the records (or the named parts of them) declare, in order."""
    names = []
    for accept in accepts:
        record, only = accept if isinstance(accept, tuple) else (accept, None)
        names += [s.name for s in dataclasses.fields(record) if only is None or s.name in only]
    return names


def check_known(given: Mapping[str, Any], *accepts: Accepts) -> None:
    """Refuse keyword arguments that the accepted records do not declare, naming those."""
    known = accepted_names(*accepts)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise TunerError(
            f"unknown option {', '.join(unknown)}; known options: {', '.join(sorted(known))}"
        )


@dataclass(frozen=True)
class WorkerOptions(Options):
    """How a worker trains and reaches the storage (``tuner worker``, ``tuner launch``).

    Storage URLs may hold a password: print them through
    :func:`tuner.storages.mask_password` only.
    """

    storage: str | None = option(
        None,
        "Optuna storage URL. Default: $TUNER_STORAGE, else the URL in the owner-only file "
        "named by $TUNER_STORAGE_FILE, else sqlite:///tuner.db.",
    )
    heartbeat_interval: int = option(
        DEFAULT_HEARTBEAT_SECONDS,
        "Seconds between heartbeats of a running trial (stale after 3 missed).",
        minimum=1,
        maximum=3600,
        forwarded=True,
    )
    max_attempts: int = option(
        3,
        "Failed attempts per grid point before giving up on it.",
        minimum=1,
        maximum=1000,
        forwarded=True,
    )
    max_stale_attempts: int = option(
        6,
        "Attempts per grid point whose worker vanished (SIGKILL, OOM, a lost or preempted "
        "machine) before giving up on it.",
        minimum=1,
        maximum=1000,
        forwarded=True,
    )
    threads: int | None = option(
        None, "Training threads per worker process.", minimum=1, maximum=4096, forwarded=True
    )
    gpu: int | None = option(
        None,
        "Train on this GPU index (default: CUDA_VISIBLE_DEVICES' first).",
        minimum=0,
        maximum=1023,
        forwarded=True,
    )
    trainer: str = option(
        DEFAULT_STRATEGY,
        "grid: many grid points with all their folds trained as one model (see --pack); "
        "packed: one grid point at a time, its folds trained together as one model; fast: "
        "one fold at a time, whole epochs in one graph with fused Adam; keras: plain "
        "model.fit (the reference).",
        envvar="TUNER_TRAINER",
        choices=STRATEGY_NAMES,
        forwarded=True,
    )
    pack: int = option(
        DEFAULT_PACK,
        "With --trainer grid: the most grid points one worker trains together (each worker "
        "takes no more than a fair share of what is waiting; on a GPU, no more than fit in "
        "its free memory).",
        envvar="TUNER_PACK",
        minimum=1,
        maximum=4096,
        forwarded=True,
    )
    backend: str | None = option(
        None,
        "Keras backend: tensorflow or jax (needs pip install 'tuner[jax]'). Default: "
        "$KERAS_BACKEND, else tensorflow.",
        choices=BACKENDS,
        forwarded=True,
    )
    mix_backends: bool = option(
        False, "Let a study created on one backend be trained on another.", forwarded=True
    )
    compile_cache: str | None = option(
        None,
        "With --backend jax: the folder of XLA's persistent compilation cache, shared by "
        "every worker and study on the machine (a program compiled once is loaded, not "
        "compiled, next time); 'off' turns it off. Default: $TUNER_COMPILE_CACHE, else "
        "$XDG_CACHE_HOME/tuner/xla, else ~/.cache/tuner/xla.",
        forwarded=True,
    )
    expected_workers: int = option(
        1,
        "Workers starting on these studies together, this one included: with --trainer "
        "grid, a claim takes at most 1/N of what is waiting even before the others have "
        "announced themselves (tuner launch --workers N sets it).",
        minimum=1,
        maximum=1_000_000,
    )
    curve_interval: int = option(
        DEFAULT_CURVE_INTERVAL,
        "Seconds between two writes of the running trials' learning curves to the storage "
        "(what the dashboard and tuner status show live; one transaction per batch).",
        minimum=1,
        maximum=3600,
        forwarded=True,
    )
    live: bool = option(True, "Live progress bars when on a terminal.", hidden=True)
    verbose: bool = option(False, "Log more, Optuna's messages included.")

    @property
    def storage_url(self) -> str:
        """The storage this worker uses: the option, else ``$TUNER_STORAGE``, else the
        default SQLite file."""
        return resolve_url(self.storage)

    def worker_argv(self) -> list[str]:
        """The ``tuner worker`` flags that pass these options on to a spawned worker.

        The storage is not among them: it travels in the environment, where ``ps`` does
        not show its password.
        """
        argv: list[str] = []
        for spec in dataclasses.fields(self):
            declared = declaration(spec)
            value = getattr(self, spec.name)
            flag = declared.flag_of(spec.name)
            if not declared.forwarded or value is None:
                continue
            if isinstance(value, bool):
                argv.append(flag if value else "--no-" + flag[2:])
            else:
                argv += [flag, str(value)]
        return argv


WORKER_ONLY = ("expected_workers", "live")
"""Worker options that ``tuner launch`` sets itself for the workers it starts."""


@dataclass(frozen=True)
class LaunchOptions(Options):
    """What ``tuner launch`` creates, on which data, and how many local workers finish it."""

    dataset: str = option(
        "mnist",
        "mnist, fashion-mnist, a table (.csv, .tsv, .parquet, .feather; with --target), a "
        ".npz (x_train, y_train[, x_test, y_test], or x, y), a .npy of inputs (with --target "
        "LABELS.npy) or a folder of IDX files.",
    )
    target: str | None = option(
        None,
        "The column to predict, for a table; for a .npy of inputs, the .npy of its labels "
        "or values.",
    )
    task: str | None = option(
        None,
        "classification or regression. Default: inferred from the target (text, booleans "
        "and integers are classes; numbers with fractions a regression).",
        choices=TASKS,
    )
    test: str | None = option(
        None, "A table of test rows (the same columns) for a table --dataset."
    )
    test_fraction: float | None = option(
        None,
        f"Share of the rows held out as the test set (seeded, stratified by class) for data "
        f"without one of its own. Default: {DEFAULT_TEST_FRACTION}.",
        minimum=0.01,
        maximum=0.9,
    )
    columns: str | None = option(
        None, "A table's feature columns, comma-separated. Default: every column but the target."
    )
    ignore_columns: str | None = option(
        None, "A table's columns to leave out of the features, comma-separated (an id, a date)."
    )
    drop_missing: bool = option(
        False,
        "Leave out rows with a missing, NaN or infinite value in a used column (and say "
        "how many) instead of refusing the data.",
    )
    epochs: int | None = option(
        None, "Epochs per fold (default: the study file's, 20).", minimum=1, maximum=100_000
    )
    subset: int | None = option(
        None,
        "Train on a fixed, seeded, class-stratified sample of N images.",
        minimum=1,
        maximum=1_000_000_000,
    )
    repeats: int = option(
        1,
        "Repeated cross-validation: score every grid point on R different k-fold splits "
        "(R*k folds, each split's seed recorded), so its interval tightens; 1 is plain "
        "k-fold CV.",
        minimum=1,
        maximum=MAX_REPEATS,
    )
    study_name: str | None = option(None, "Study name (default: the variant's name).")
    studies_dir: Path | None = option(
        None,
        "Folder of study definition files (*.toml). Default: $TUNER_STUDIES, else the "
        "built-in definitions.",
        flag="--studies",
    )
    workers: int = option(
        1,
        "Local worker processes; 0 only creates the studies and prints how to start workers.",
        minimum=0,
        maximum=1024,
    )
    gpus: str | None = option(
        None,
        "Start local workers on this machine's GPUs, each pinned to its device with "
        "CUDA_VISIBLE_DEVICES: 'all' (every visible GPU), N (the first N) or a list of "
        "indices such as 0,2 ('2,' is device 2 alone); replaces --workers.",
    )
    workers_per_gpu: int = option(
        1,
        "With --gpus: local workers per device, sharing it.",
        minimum=1,
        maximum=64,
    )
    report: bool = option(True, "End with `tuner report` for the variants launched.")

    def validate(self) -> None:
        """Check every field, and that ``--gpus`` reads as a device request."""
        super().validate()
        if self.gpus is not None:
            from tuner.api._gpus import parse_gpus

            parse_gpus(self.gpus)


@dataclass(frozen=True)
class ReportOptions(Options):
    """Where ``tuner report`` writes, and whether it fits the winners again."""

    out: Path = option(Path("reports"), "Folder for the report.")
    refit: bool = option(False, "Retrain the winners even if already done.")
    final_seeds: int = option(
        1,
        "Final fits of each variant's winner, each from its own seed: the report shows "
        "test accuracy and loss as mean and spread, and the verdict reads every fit.",
        minimum=1,
        maximum=MAX_FINAL_SEEDS,
    )
    alpha: float = option(
        DEFAULT_ALPHA,
        "Significance level of the ties with each study's best point and of the "
        "differences between variants (corrected t-tests, Holm-corrected).",
        minimum=0.0001,
        maximum=0.5,
    )


@dataclass(frozen=True)
class DashboardOptions(Options):
    """Where ``tuner dashboard`` serves."""

    host: str = option("127.0.0.1", "Address to bind; the dashboard has no login, keep it local.")
    port: int = option(8080, "Port to serve on.", minimum=1, maximum=65535)
    artifacts: Path | None = option(
        None, "Artifact folder (default: $TUNER_ARTIFACTS, else beside the DB)."
    )


F = TypeVar("F", bound=Callable[..., Any])


def documented(*accepts: Accepts) -> Callable[[F], F]:
    """Fill the ``OPTIONS`` line of a function's docstring with the options it accepts,
    one Google-style ``name: help`` line each, from their declarations."""

    def document(function: F) -> F:
        lines = []
        for accept in accepts:
            record, only = accept if isinstance(accept, tuple) else (accept, None)
            for spec in dataclasses.fields(record):
                declared = declaration(spec)
                if declared.hidden or (only is not None and spec.name not in only):
                    continue
                default = "" if spec.default is None else f" Default: {spec.default!r}."
                lines.append(f"            {spec.name}: {declared.help}{default}")
        function.__doc__ = (function.__doc__ or "").replace("OPTIONS", "\n".join(lines))
        return function

    return document
