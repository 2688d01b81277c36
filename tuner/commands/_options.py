"""What a worker and a launch are asked to do: plain, validated option records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tuner.data import DatasetSpec
from tuner.scheduling import DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_STALE_ATTEMPTS
from tuner.storages import DEFAULT_HEARTBEAT_SECONDS
from tuner.study import BACKENDS, TRAINERS

DEFAULT_PACK = 16
"""Grid points trained together by default (``--pack``): the study's 2layer grid fits in
one batch; larger grids split into several."""


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker process trains and talks to the storage.

    Attributes:
        storage_url: The Optuna storage URL (may hold a password: never print it raw).
        heartbeat_interval: Seconds between heartbeats; a trial is stale after 3.
        max_attempts: Failed attempts (errors) per grid point before it is given up.
        max_stale_attempts: Attempts per grid point whose worker vanished (SIGKILL, OOM,
            preemption) before it is given up.
        threads: TensorFlow threads (None: TensorFlow's default).
        gpu: GPU index to train on (None: the first visible, else the CPU).
        live_progress: Live progress bars when output is a terminal.
        trainer: ``grid`` (the default), ``packed``, ``fast`` or ``keras``.
        pack: With the ``grid`` trainer, the most grid points one worker trains together
            (each worker also takes no more than a fair share of what is waiting).
        backend: The Keras backend, ``tensorflow`` or ``jax`` (already selected for the
            process by :func:`tuner.training.use_backend`).
        mix_backends: Train a study created on another backend anyway.
        expected_workers: Workers starting on the same studies together (fair shares
            count at least this many; see :class:`tuner.scheduling.GridScheduler`).
    """

    storage_url: str
    heartbeat_interval: int = DEFAULT_HEARTBEAT_SECONDS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_stale_attempts: int = DEFAULT_MAX_STALE_ATTEMPTS
    threads: int | None = None
    gpu: int | None = None
    live_progress: bool = True
    trainer: str = TRAINERS[0]
    pack: int = DEFAULT_PACK
    backend: str = BACKENDS[0]
    mix_backends: bool = False
    expected_workers: int = 1


@dataclass(frozen=True)
class LaunchOptions:
    """What ``tuner launch`` creates and how it has the grids evaluated.

    Attributes:
        dataset: The data every trial of the studies trains on.
        worker: How workers train and reach the storage.
        epochs: Epochs per fold (None: each definition's own).
        study_name: Study name for a single variant (None: the variant's name).
        workers: Local worker processes; 0 only creates the studies.
        report_dir: Where the final report goes (None: no report).
    """

    dataset: DatasetSpec
    worker: WorkerOptions
    epochs: int | None = None
    study_name: str | None = None
    workers: int = 1
    report_dir: Path | None = None
