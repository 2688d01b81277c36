"""The Python API: what every ``tuner`` command calls, for scripts and notebooks.

Use it as ``import tuner``; this package holds its implementation. Every function
raises :class:`~tuner.errors.TunerError` for a problem the user can fix, with the
one-line message the CLI prints.
"""

from tuner.api._dashboard import serve_dashboard
from tuner.api._read import load_results, status
from tuner.api._report import report
from tuner.api._run import launch, work
from tuner.api._variants import define_variant, variants

__all__ = [
    "define_variant",
    "launch",
    "load_results",
    "report",
    "serve_dashboard",
    "status",
    "variants",
    "work",
]
