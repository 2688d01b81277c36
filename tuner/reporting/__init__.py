"""Reporting: what a study found, as tables, pictures, a report and a live status.

Each result object (:class:`Results`, :class:`Report`, :class:`StatusTable`,
:class:`VariantTable`) prints to a terminal, renders as HTML in Jupyter and turns into
plain records or a pandas DataFrame; the pictures are matplotlib Figures.

The report renders the comparison from stored records (the winners' final fits are an
application step, :mod:`tuner.api`): nothing here trains or imports
:mod:`tuner.training`; ``status`` and the ranking read the storage only. Names are
imported on first use, so ``tuner status`` loads neither a deep-learning framework nor
matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuner.reporting._dashboard import serve
    from tuner.reporting._plots import ReportFigure
    from tuner.reporting._ranking import RankedPoint, ranked_points, render_ranking
    from tuner.reporting._report import Report, VariantReport, build_report, complete_studies
    from tuner.reporting._results import Results, StudyResults, load_results
    from tuner.reporting._status import RunningTrial, StudyStatus, render_status, study_status
    from tuner.reporting._status_table import StatusTable
    from tuner.reporting._variants import VariantTable
    from tuner.reporting._verdict import Verdict, judge, judge_runs

_LOCATIONS = {
    "serve": "_dashboard",
    "ReportFigure": "_plots",
    "RankedPoint": "_ranking",
    "ranked_points": "_ranking",
    "render_ranking": "_ranking",
    "Report": "_report",
    "VariantReport": "_report",
    "build_report": "_report",
    "complete_studies": "_report",
    "Results": "_results",
    "StudyResults": "_results",
    "load_results": "_results",
    "RunningTrial": "_status",
    "StudyStatus": "_status",
    "render_status": "_status",
    "study_status": "_status",
    "StatusTable": "_status_table",
    "VariantTable": "_variants",
    "Verdict": "_verdict",
    "judge": "_verdict",
    "judge_runs": "_verdict",
}

__all__ = [
    "RankedPoint",
    "Report",
    "ReportFigure",
    "Results",
    "RunningTrial",
    "StatusTable",
    "StudyResults",
    "StudyStatus",
    "VariantReport",
    "VariantTable",
    "Verdict",
    "build_report",
    "complete_studies",
    "judge",
    "judge_runs",
    "load_results",
    "ranked_points",
    "render_ranking",
    "render_status",
    "serve",
    "study_status",
]


def __getattr__(name: str) -> Any:
    if name not in _LOCATIONS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LOCATIONS[name]}"), name)
