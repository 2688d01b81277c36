"""Live progress for long work: trial i of N, fold, epoch, elapsed and ETA.

In a terminal it is a rich progress display; in Jupyter the same display renders in
one output widget that is redrawn in place (rich's Jupyter support, which needs
ipywidgets: ``pip install 'tuner[notebook]'``); when output is neither (CI logs,
`docker compose logs`, a notebook without ipywidgets) it prints one plain line per
finished trial instead.
"""

from __future__ import annotations

import importlib.util
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def format_units(names: list[str], units: tuple[int, ...] | list[int]) -> str:
    """``l1=512 l2=64``: a grid point as every message names it."""
    return " ".join(f"{name}={value}" for name, value in zip(names, units, strict=True))


def _widgets_available() -> bool:
    return importlib.util.find_spec("ipywidgets") is not None


class ProgressDisplay:
    """Tracks a study's grid in epochs of work, so the ETA covers what is left of it.

    Args:
        console: Where the display goes (default: standard error).
        live: Draw live bars where the console can (a terminal, or Jupyter with
            ipywidgets); False prints one line per finished trial.
    """

    def __init__(self, console: Console | None = None, live: bool = True) -> None:
        self.console = console or Console(stderr=True)
        self.jupyter = self.console.is_jupyter and _widgets_available()
        self.live = live and (self.console.is_terminal or self.jupyter)
        self._metric = "acc"  # the score's short name in a running trial's line
        self._others = 0  # points other workers completed since this one started
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            # A notebook's 115 columns also hold the last result (see trial_finished).
            BarColumn(bar_width=10 if self.jupyter else 16),
            TextColumn("{task.fields[detail]}", markup=False),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.live,
            # Refreshing from rich's thread would write into a notebook's output widget
            # from outside the cell's execution; redraw on each event instead.
            auto_refresh=not self.jupyter,
        )
        self._study_task: TaskID | None = None
        self._trial_task: TaskID | None = None
        self._epochs_per_fold: float = 1
        self._fold_epochs = 1
        self._packed = 1
        self._points = 1
        self._fold_text = ""
        self._label = ""

    def __enter__(self) -> ProgressDisplay:
        self._progress.start()
        return self

    def _redraw(self) -> None:
        if self.jupyter and self.live:
            self._progress.refresh()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def study_started(
        self,
        name: str,
        grid_size: int,
        done: int,
        folds: int,
        epochs: float,
        metric: str = "accuracy",
    ) -> None:
        self._metric = "acc" if metric == "accuracy" else metric
        self._epochs_per_fold = epochs
        self._folds = folds
        total = grid_size * folds * epochs
        self._study_task = self._progress.add_task(
            name,
            total=total,
            completed=round(done * folds * epochs),
            detail=f"{done}/{grid_size} points",
        )
        self.grid_size = grid_size
        self.done = done
        self._others = 0
        if not self.live:
            self.console.print(f"{name}: {done}/{grid_size} grid points already complete")
        self._redraw()

    def trial_started(self, number: int, label: str) -> None:
        self._points = 1
        self._label = label
        self._trial_task = self._progress.add_task(f"  trial {number}", total=None, detail=label)
        self._redraw()

    def batch_started(self, numbers: list[int], labels: list[str]) -> None:
        """Several grid points train together (grid packing): one bar for all of them."""
        self._points = len(numbers)
        shown = ", ".join(labels[:3]) + (f" +{len(labels) - 3}" if len(labels) > 3 else "")
        self._label = f"{len(numbers)} points together ({shown})"
        self._trial_task = self._progress.add_task(
            f"  trials {min(numbers)}-{max(numbers)}", total=None, detail=self._label
        )
        if not self.live:
            self.console.print(
                f"trials {', '.join(map(str, numbers))}: {len(numbers)} grid points training "
                "together",
                highlight=False,
                markup=False,
            )
        self._redraw()

    def fold_started(self, fold: int, n_folds: int, epochs: int, packed: int = 1) -> None:
        """``packed`` folds, starting at ``fold``, train together: each epoch counts for all."""
        self._packed = packed
        self._fold_epochs = epochs  # this point's own, where the grid has an epochs axis
        self._fold_text = (
            f"folds {fold}-{fold + packed - 1}/{n_folds} packed"
            if packed > 1
            else f"fold {fold}/{n_folds}"
        )
        if self._trial_task is not None:
            self._progress.update(
                self._trial_task,
                total=n_folds * epochs,
                completed=(fold - 1) * epochs,
                detail=f"{self._label} {self._fold_text}",
            )
            self._redraw()

    def epoch_ended(self, epoch: int, logs: dict[str, float]) -> None:
        if self._trial_task is None or self._study_task is None:
            return
        acc = logs.get("val_accuracy")
        metric = f" {self._metric} {acc:.3f}" if acc is not None else ""
        self._progress.update(
            self._trial_task,
            advance=self._packed,
            detail=f"{self._label} {self._fold_text} epoch {epoch}/{self._fold_epochs}{metric}",
        )
        self._progress.advance(self._study_task, self._packed * self._points)
        self._redraw()

    def trial_finished(self, number: int, label: str, message: str, completed: bool) -> None:
        if self._trial_task is not None:
            self._progress.remove_task(self._trial_task)
            self._trial_task = None
        if self._study_task is not None and completed:
            self.done += 1
            points = self._points_text()
            self._progress.update(
                self._study_task,
                completed=(self.done + self._others) * self._folds * self._epochs_per_fold,
                # A notebook keeps one output per printed line; the last result goes
                # into the bar instead, so a long grid does not flood the cell.
                detail=f"{points}; last {label}: {message}" if self.jupyter else points,
            )
        self._redraw()
        if not (self.jupyter and self.live and completed):
            self.console.print(
                f"trial {number} [{label}]: {message}", highlight=False, markup=False
            )

    def study_complete(self, points: int) -> None:
        """The study's complete points, every worker's: the bar shows the study's total
        and this worker's share, so it moves while others finish points too."""
        if self._study_task is None or points <= self.done + self._others:
            return
        self._others = points - self.done
        self._progress.update(
            self._study_task,
            completed=points * self._folds * self._epochs_per_fold,
            detail=self._points_text(),
        )
        self._redraw()

    def _points_text(self) -> str:
        total = self.done + self._others
        mine = f" ({self.done} by this worker)" if self._others else ""
        return f"{total}/{self.grid_size} points{mine}"

    def trials_given_back(self, numbers: list[int], reason: str) -> None:
        """An interruption gave these trials back: one line for all of them."""
        if self._trial_task is not None:
            self._progress.remove_task(self._trial_task)
            self._trial_task = None
        self._redraw()
        listed = ", ".join(str(number) for number in numbers)
        self.console.print(
            f"{reason}: trial(s) {listed} given back; their finished folds are kept",
            highlight=False,
            markup=False,
        )

    def note(self, message: str) -> None:
        self.console.print(message, highlight=False, markup=False)
