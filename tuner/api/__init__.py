"""The application layer: what every ``tuner`` command does, for scripts and notebooks too.

Use it as ``import tuner``. Each command is one function here (:func:`launch`,
:func:`work`, :func:`report`, :func:`status`, :func:`serve_dashboard`, :func:`variants`,
:func:`describe_data`),
composing the study, data, storage, scheduling, training and reporting packages; the CLI
(:mod:`tuner.cli`) only parses flags into the option records declared in
:mod:`tuner.api._options` and calls them. Every function raises
:class:`~tuner.errors.TunerError` for a problem the user can fix, with the one-line
message the CLI prints.
"""

from tuner.api._dashboard import serve_dashboard
from tuner.api._data import DATA_OPTIONS, DataSummary, describe_data
from tuner.api._delete import delete, describe_deletion
from tuner.api._launch import LAUNCH_ACCEPTS, launch
from tuner.api._options import (
    DEFAULT_PACK,
    Accepts,
    DashboardOptions,
    LaunchOptions,
    Option,
    Options,
    ReportOptions,
    WorkerOptions,
    accepted_names,
    declaration,
)
from tuner.api._read import load_results, status
from tuner.api._report import REPORT_WORKER_OPTIONS, report
from tuner.api._variants import define_variant, variants
from tuner.api._worker import work

__all__ = [
    "DATA_OPTIONS",
    "DEFAULT_PACK",
    "LAUNCH_ACCEPTS",
    "REPORT_WORKER_OPTIONS",
    "Accepts",
    "DashboardOptions",
    "DataSummary",
    "LaunchOptions",
    "Option",
    "Options",
    "ReportOptions",
    "WorkerOptions",
    "accepted_names",
    "declaration",
    "define_variant",
    "delete",
    "describe_data",
    "describe_deletion",
    "launch",
    "load_results",
    "report",
    "serve_dashboard",
    "status",
    "variants",
    "work",
]
