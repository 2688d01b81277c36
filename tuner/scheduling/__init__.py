"""Scheduling: which grid point runs next, and each trial's life from claim to COMPLETE.

:class:`GridScheduler` decides (claims under a cross-process lock, heartbeats, reaps
stale trials, counts attempts, completes and salvages); :class:`TrialRunner` runs what
it is handed through an ``evaluate`` callable. Neither imports a deep-learning
framework, so ``tuner status`` and the claim protocol stay light and testable.
"""

from tuner.scheduling._curves import DEFAULT_CURVE_INTERVAL, CurveWriter
from tuner.scheduling._grid_state import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_STALE_ATTEMPTS,
    GridState,
)
from tuner.scheduling._heartbeat import Heartbeat
from tuner.scheduling._runner import (
    Evaluate,
    EvaluateBatch,
    RunSummary,
    TrialListener,
    TrialRunner,
)
from tuner.scheduling._scheduler import DUPLICATE_CLAIM, ClaimedTrial, GridScheduler, TrialRecorder
from tuner.scheduling._signals import interrupts_raise

__all__ = [
    "DEFAULT_CURVE_INTERVAL",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_STALE_ATTEMPTS",
    "DUPLICATE_CLAIM",
    "ClaimedTrial",
    "CurveWriter",
    "Evaluate",
    "EvaluateBatch",
    "GridScheduler",
    "GridState",
    "Heartbeat",
    "RunSummary",
    "TrialListener",
    "TrialRecorder",
    "TrialRunner",
    "interrupts_raise",
]
