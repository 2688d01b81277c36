"""User-facing exceptions: the CLI turns them into a clean line and an exit code."""

import signal


class TunerError(Exception):
    """A user-facing problem: the message names what is wrong and how to fix it.

    The CLI prints it as one line and exits non-zero without a traceback, so the
    message must stand on its own.
    """


class WorkerInterrupted(BaseException):
    """Raised in the main thread by SIGTERM (SIGINT raises KeyboardInterrupt).

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class PermanentTrialError(Exception):
    """A trial failed in a way re-running the same point would repeat (a diverged loss).

    The scheduler records such a failure as not retryable and gives the point up at once.
    """
