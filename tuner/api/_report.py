"""The report from Python: final fits, verdicts, tables and pictures, returned and written."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from tuner.api._setup import names_list, output, quiet_optuna, select_backend
from tuner.reporting import Report, build_report
from tuner.storages import resolve_url


def report(
    names: str | Sequence[str] | None = None,
    *,
    storage: str | None = None,
    out: str | Path = "reports",
    refit: bool = False,
    backend: str | None = None,
    console: Console | None = None,
) -> Report | None:
    """Retrain each winner, test it, judge it and write the comparison: ``tuner report``.

    A winner's final fit is stored on its study, so a second report does not retrain
    (unless ``refit``) and any machine with the storage can report; the deep-learning
    framework is imported only when a fit has to run.

    Args:
        names: Studies to report, each complete (default, or ``"all"``: every study
            whose grid is complete).
        storage: Optuna storage URL (default: ``$TUNER_STORAGE``, else
            ``sqlite:///tuner.db``, which must exist).
        out: Folder for report.html, report.md, comparison.csv/.json and the PNGs.
        refit: Retrain the winners even where a final fit is stored.
        backend: Keras backend for final fits, ``tensorflow`` or ``jax`` (default:
            ``$KERAS_BACKEND``, else TensorFlow).
        console: Where messages go (default: standard output; in Jupyter, the cell).

    Returns:
        The comparison's numbers, each variant's fit, verdict, ranked grid, figures and
        their PNG paths; None when no study is complete yet.

    Raises:
        TunerError: A named study is missing or incomplete, the storage does not exist,
            or the data of a final fit differs from the study's.
    """
    select_backend(backend, load=False)
    quiet_optuna(False)
    return build_report(names_list(names), resolve_url(storage), Path(out), refit, output(console))
