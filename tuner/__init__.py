"""tuner: grid-search hyperparameter tuning of Keras MLPs as an Optuna service.

The Python API is what every ``tuner`` command calls::

    import tuner

    results = tuner.launch("2layer", "fashion-mnist", subset=3000, epochs=2, report=False)
    results["2layer"].to_frame()        # one row per grid point, per-fold numbers too
    report = tuner.report("2layer")     # final fit, verdict, tables, PNGs
    report.to_frame()                   # the comparison
    report.variants["2layer"].loss_curves()   # a matplotlib Figure

Run and read: :func:`launch`, :func:`work`, :func:`load_results`, :func:`report`,
:func:`status`, :func:`serve_dashboard`. Variants: :func:`variants`,
:func:`define_variant`. Data: :func:`describe_data` (what tuner makes of a table or
arrays). In Jupyter, results, reports, status and variants render as
HTML tables and figures inline. Errors the user can fix are :class:`TunerError`.

Importing tuner is cheap: each name loads on first use, and TensorFlow (or JAX) only
when something trains, matplotlib only when something is drawn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from tuner.api import (
        define_variant,
        delete,
        describe_data,
        launch,
        load_results,
        report,
        serve_dashboard,
        status,
        variants,
        work,
    )
    from tuner.errors import TunerError
    from tuner.reporting import (
        RankedPoint,
        Report,
        Results,
        StatusTable,
        StudyResults,
        StudyStatus,
        VariantReport,
        VariantTable,
    )
    from tuner.study import StudyDefinition

_LOCATIONS = {
    "define_variant": "tuner.api",
    "delete": "tuner.api",
    "describe_data": "tuner.api",
    "launch": "tuner.api",
    "load_results": "tuner.api",
    "report": "tuner.api",
    "serve_dashboard": "tuner.api",
    "status": "tuner.api",
    "variants": "tuner.api",
    "work": "tuner.api",
    "TunerError": "tuner.errors",
    "RankedPoint": "tuner.reporting",
    "Report": "tuner.reporting",
    "Results": "tuner.reporting",
    "StatusTable": "tuner.reporting",
    "StudyResults": "tuner.reporting",
    "StudyStatus": "tuner.reporting",
    "VariantReport": "tuner.reporting",
    "VariantTable": "tuner.reporting",
    "StudyDefinition": "tuner.study",
}

__all__ = [
    "RankedPoint",
    "Report",
    "Results",
    "StatusTable",
    "StudyDefinition",
    "StudyResults",
    "StudyStatus",
    "TunerError",
    "VariantReport",
    "VariantTable",
    "__version__",
    "define_variant",
    "delete",
    "describe_data",
    "launch",
    "load_results",
    "report",
    "serve_dashboard",
    "status",
    "variants",
    "work",
]


def __getattr__(name: str) -> Any:
    if name not in _LOCATIONS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LOCATIONS[name]), name)
    # Later look-ups skip this hook.
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    # help(tuner) and tab completion list the API before any of it is loaded.
    return sorted(set(globals()) | set(__all__))
