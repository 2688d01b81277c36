"""Local worker processes for `tuner launch --workers N`.

Each is a real `tuner worker` process, exactly what users start on other machines; the
storage URL travels in the environment, never in argv where `ps` would show a password.
SIGINT and SIGTERM are forwarded from before the first worker starts, so an interrupt
that arrives while they start up still reaches every one of them.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from types import FrameType

from rich.console import Console

from tuner.api._options import WorkerOptions
from tuner.errors import TunerError, WorkerInterrupted


def worker_command(
    study_names: list[str], options: WorkerOptions, threads: int, count: int = 1
) -> list[str]:
    """The argv of one of ``count`` local workers: the options it forwards (see
    :meth:`WorkerOptions.worker_argv`; no storage URL: that goes in the environment)."""
    command = [sys.executable, "-m", "tuner", "worker", "--no-live"]
    for name in study_names:
        command += ["--study-name", name]
    forwarded = dataclasses.replace(options, threads=threads)
    return [*command, *forwarded.worker_argv(), "--expected-workers", str(count)]


def run_local_workers(
    study_names: list[str],
    options: WorkerOptions,
    count: int,
    console: Console,
    overrides: list[dict[str, str]] | None = None,
) -> None:
    """Start `count` workers, pass SIGINT/SIGTERM on to them, and wait for all of them.

    Args:
        study_names: The studies every worker works.
        options: The options they are started with.
        count: How many to start.
        console: Where the start is announced.
        overrides: Each worker's own environment variables (``tuner launch --gpus``: its
            CUDA_VISIBLE_DEVICES), ``count`` of them; None: none.
    """
    if overrides is not None and len(overrides) != count:
        raise ValueError(f"{len(overrides)} environment overrides for {count} workers")
    threads = options.threads or max(1, (os.cpu_count() or 1) // count)
    command = worker_command(study_names, options, threads, count)
    environment = {**os.environ, "TUNER_STORAGE": options.storage_url}
    pinned = ""
    if overrides is not None:
        devices = sorted({override.get("CUDA_VISIBLE_DEVICES", "") for override in overrides})
        pinned = f", {count // len(devices)} on each GPU of {','.join(devices)}"
    console.print(
        f"starting {count} local workers, {threads} {options.backend} thread(s) each{pinned}",
        highlight=False,
    )
    workers: list[subprocess.Popen[bytes]] = []
    received: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for index in range(count):
            if received:
                break
            own = overrides[index] if overrides is not None else {}
            workers.append(subprocess.Popen(command, env={**environment, **own}))
        codes = [worker.wait() for worker in workers]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        # Only reached with live workers when something went wrong here: leave no orphans.
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    if received:
        raise KeyboardInterrupt if received[0] == signal.SIGINT else WorkerInterrupted(received[0])
    failed = [code for code in codes if code != 0]
    if failed:
        raise TunerError(
            f"{len(failed)} of {count} workers failed (exit codes {failed}); "
            "see their messages above, fix the cause and launch again to resume"
        )
