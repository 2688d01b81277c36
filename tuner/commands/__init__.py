"""Commands: what ``tuner launch`` and ``tuner worker`` do, as functions the CLI calls.

The CLI only parses options into :class:`LaunchOptions` / :class:`WorkerOptions` and
delegates here; these compose the study, scheduling, training and reporting packages.
"""

from tuner.commands._launch import create_studies, launch
from tuner.commands._local_workers import run_local_workers, worker_command
from tuner.commands._options import DEFAULT_PACK, LaunchOptions, WorkerOptions
from tuner.commands._worker import run_worker, work_study

__all__ = [
    "DEFAULT_PACK",
    "LaunchOptions",
    "WorkerOptions",
    "create_studies",
    "launch",
    "run_local_workers",
    "run_worker",
    "work_study",
    "worker_command",
]
