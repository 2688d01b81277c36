"""SIGTERM as an exception, so a stopped worker gives its grid points back.

SIGINT already raises KeyboardInterrupt; SIGTERM (``docker compose stop``, Kubernetes,
``kill``) would end the process on the spot and leave its trials RUNNING until their
heartbeats went stale. Raised as :class:`~tuner.errors.WorkerInterrupted`, it unwinds
through the runner, which marks every held trial interrupted (not charged an attempt).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from tuner.errors import WorkerInterrupted


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """Turn SIGTERM into WorkerInterrupted, and SIGINT back into KeyboardInterrupt.

    SIGINT is set to Python's default handler because a process started from a
    background job of a non-interactive shell (nohup, some CI runners) inherits SIGINT
    *ignored*, and Ctrl-C or a forwarded SIGINT would then do nothing at all.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise WorkerInterrupted(signum)

    previous_term = signal.signal(signal.SIGTERM, handler)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)
