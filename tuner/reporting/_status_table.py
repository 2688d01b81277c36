"""The status of every study in a storage, as one object: printed, shown in Jupyter, tabulated."""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from rich.console import Console

from tuner.reporting import _html
from tuner.reporting._status import StudyStatus, render_status

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["study", "grid", "complete", "running", "waiting", "failed", "best", "ETA"]


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else str(datetime.timedelta(seconds=round(seconds)))


class StatusTable(Sequence[StudyStatus]):
    """Each tuner study's :class:`StudyStatus`: what ``tuner status`` shows.

    In Jupyter it renders as the status table, with the running trials listed under it.

    Args:
        statuses: One status per study, in storage order.
    """

    def __init__(self, statuses: Sequence[StudyStatus]) -> None:
        self._statuses = list(statuses)

    @overload
    def __getitem__(self, index: int) -> StudyStatus: ...

    @overload
    def __getitem__(self, index: slice) -> list[StudyStatus]: ...

    def __getitem__(self, index: int | slice) -> StudyStatus | list[StudyStatus]:
        return self._statuses[index]

    def __len__(self) -> int:
        return len(self._statuses)

    def __iter__(self) -> Iterator[StudyStatus]:
        return iter(self._statuses)

    def __repr__(self) -> str:
        return f"StatusTable({', '.join(status.name for status in self._statuses)})"

    def to_records(self) -> list[dict[str, Any]]:
        """One plain dict per study: its counts, CV repeats and folds, best point and ETA in
        seconds."""
        return [
            {
                "study": status.name,
                "grid_points": status.grid_size,
                "cv_repeats": status.repeats,
                "cv_folds": status.folds,
                "complete": status.complete,
                "running": len(status.running),
                "waiting": status.waiting,
                "failed_attempts": status.failed_attempts,
                "interrupted_attempts": status.interrupted,
                "last_failure": status.last_failure,
                "best_value": status.best_value,
                "best_units": status.best_units,
                "best_ci_low": status.best_interval[0] if status.best_interval else None,
                "best_ci_high": status.best_interval[1] if status.best_interval else None,
                "mean_trial_seconds": status.mean_trial_seconds,
                "eta_seconds": status.eta_seconds(),
            }
            for status in self._statuses
        ]

    def to_frame(self) -> pd.DataFrame:
        """:meth:`to_records` as a DataFrame, one row per study."""
        import pandas as pd

        return pd.DataFrame(self.to_records())

    def render(self, console: Console) -> None:
        """Print the status table (or say that the storage holds no tuner study)."""
        if not self._statuses:
            console.print("no tuner studies in this storage yet")
            return
        render_status(console, self._statuses)

    def _repr_html_(self) -> str:
        if not self._statuses:
            return "<p>no tuner studies in this storage yet</p>"
        body = [
            [
                status.name,
                status.grid_cell,
                status.complete,
                len(status.running),
                status.waiting,
                status.failed_cell,
                f"{status.best_value:.4f} ({status.best_units})"
                if status.best_value is not None
                else "-",
                _duration(status.eta_seconds()),
            ]
            for status in self._statuses
        ]
        notes = [
            (status.name, f"trial {trial.number} [{trial.units}] on {trial.worker}")
            for status in self._statuses
            for trial in status.running
        ] + [
            (status.name, f"last failure: {status.last_failure}")
            for status in self._statuses
            if status.last_failure
        ]
        return _html.table(COLUMNS, body, caption="tuner studies") + (
            _html.bullet_list(notes) if notes else ""
        )
