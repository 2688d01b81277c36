"""Heartbeats of the trials a worker holds, from one thread that survives storage errors.

Optuna's own heartbeat thread stops at the first storage error; one database blip would
then make a live trial look dead and get its point re-run while it still trains.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

import optuna

log = logging.getLogger(__name__)


class Heartbeat:
    """Records a heartbeat for every held trial every ``interval`` seconds until closed."""

    def __init__(
        self,
        storage: optuna.storages.RDBStorage,
        trial_ids: Iterable[int],
        interval: float,
        on_beat: Callable[[], None] | None = None,
    ) -> None:
        self.storage, self.interval, self.on_beat = storage, interval, on_beat
        self._held = set(trial_ids)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="tuner-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def release(self, trial_id: int) -> None:
        """Stop beating for a trial that has finished."""
        with self._lock:
            self._held.discard(trial_id)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                held = sorted(self._held)
            for trial_id in held:
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception as exc:
                    log.warning("heartbeat for trial id %s failed, will retry: %s", trial_id, exc)
            if self.on_beat is not None:
                try:
                    self.on_beat()
                except Exception as exc:
                    log.warning("worker announcement failed, will retry: %s", exc)
