"""SIGTERM as an exception, so a stopped worker gives its grid points back.

SIGINT already raises KeyboardInterrupt; SIGTERM (``docker compose stop``, Kubernetes,
``kill``) would end the process on the spot and leave its trials RUNNING until their
heartbeats went stale. Raised as :class:`~tuner.errors.WorkerInterrupted`, it unwinds
through the runner, which marks every held trial interrupted (not charged an attempt).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from tuner.errors import WorkerInterrupted

_requested: list[int] = []


def interrupt_exception(signum: int) -> BaseException:
    """What a stop request raises: KeyboardInterrupt for SIGINT, else WorkerInterrupted."""
    return KeyboardInterrupt() if signum == signal.SIGINT else WorkerInterrupted(signum)


def interrupt_requested() -> int | None:
    """The signal that asked this process to stop while interrupts raise, if one did.

    An exception raised from a signal handler lands wherever the main thread happens to
    be: inside a weakref callback Python drops it, inside native code building a graph it
    can come out as another error. The runner asks this at every trial boundary, so a
    stop request is honoured even when its exception was lost or mangled.
    """
    return _requested[-1] if _requested else None


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """Turn SIGTERM into WorkerInterrupted, and SIGINT back into KeyboardInterrupt.

    SIGINT is handled (as Python's default handler does, raising KeyboardInterrupt, and
    recorded for :func:`interrupt_requested`) because a process started from a background
    job of a non-interactive shell (nohup, some CI runners) inherits SIGINT *ignored*,
    and Ctrl-C or a forwarded SIGINT would then do nothing at all.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        # Recorded before raising: native code (TensorFlow tracing a graph) can turn the
        # exception into another error, and the runner then asks what was requested.
        first = not _requested
        _requested.append(signum)
        if first:
            raise interrupt_exception(signum)
        # A second signal (Ctrl-C pressed twice) lands while the first one unwinds, that
        # is while the runner gives its held points back: raised there, it would cut the
        # give-back short and leave them RUNNING. It is recorded, and the stop goes on.

    previous_hook = sys.unraisablehook
    main = threading.main_thread().ident
    assert main is not None

    def unraisable(hook: Any) -> None:
        # Raised inside a weakref callback or __del__, where Python drops it: deliver the
        # signal again from another thread, to land once that callback has returned.
        exc = hook.exc_value
        if isinstance(exc, (WorkerInterrupted, KeyboardInterrupt)):
            signum = exc.signum if isinstance(exc, WorkerInterrupted) else signal.SIGINT
            _requested.clear()  # so that the signal delivered again raises, as the first
            threading.Timer(0.05, signal.pthread_kill, (main, signum)).start()
            return
        previous_hook(hook)

    _requested.clear()
    previous_term = signal.signal(signal.SIGTERM, handler)
    previous_int = signal.signal(signal.SIGINT, handler)
    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)
