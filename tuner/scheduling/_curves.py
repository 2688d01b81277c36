"""Live learning curves: each running trial's per-epoch value, written while it trains.

A trial's intermediate value at step ``e`` is the point's mean validation accuracy over
its folds at epoch ``e`` (the quantity its final value is the last epoch of), so
optuna-dashboard, ``tuner status`` and the Python API can follow a batch from any
machine. Writes are bounded whatever the batch and fleet size: values are buffered and
flushed in one transaction for every trial of a batch, at most once per ``interval``
seconds (and once at the end), never once per value.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import optuna

from tuner.storages import set_intermediate_values, with_retries

if TYPE_CHECKING:
    from tuner.scheduling._scheduler import TrialRecorder

log = logging.getLogger(__name__)

DEFAULT_CURVE_INTERVAL = 5
"""Seconds between two writes of a batch's learning curves (``--curve-interval``)."""


class CurveWriter:
    """Buffers the curves of one batch's trials and writes them together, throttled.

    Args:
        storage: The storage the trials live in.
        interval: Least seconds between two writes (the last one is never held back).
    """

    def __init__(self, storage: optuna.storages.RDBStorage, interval: float) -> None:
        self.storage, self.interval = storage, interval
        self._pending: dict[tuple[int, int], float] = {}
        self._recorders: dict[int, TrialRecorder] = {}
        self._last_write = time.monotonic()
        self.writes = 0

    def add(self, recorder: TrialRecorder, step: int, value: float) -> None:
        """Buffer the trial's value at ``step``; write everything buffered if it is time."""
        recorder.intermediate[step] = value
        if recorder.reaped:
            return
        self._recorders[recorder.claim.trial_id] = recorder
        self._pending[(recorder.claim.trial_id, step)] = value
        if time.monotonic() - self._last_write >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Write everything buffered now, in one transaction."""
        if not self._pending:
            return
        values = [(trial_id, step, value) for (trial_id, step), value in self._pending.items()]
        self._pending.clear()
        self._last_write = time.monotonic()
        try:
            finished = with_retries(
                lambda: set_intermediate_values(self.storage, values), "writing learning curves"
            )
        except optuna.exceptions.UpdateFinishedTrialError:
            # One of them was reaped between the check and the write: write the rest.
            finished = set()
            for trial_id, step, value in values:
                try:
                    self.storage.set_trial_intermediate_value(trial_id, step, value)
                except optuna.exceptions.UpdateFinishedTrialError:
                    finished.add(trial_id)
        self.writes += 1
        for trial_id in finished:
            # Reaped as stale while it trained: the recorder keeps its values for salvage.
            self._recorders[trial_id].mark_reaped()
