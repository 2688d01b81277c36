"""Storage calls that ride out a database restart instead of losing finished work.

A result that took minutes of training must not be lost to a connection dropped for a
second; retrying the same write is safe because every retried call here is idempotent
(setting an attribute or a state to the same value).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import optuna
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)
T = TypeVar("T")


def with_retries(action: Callable[[], T], what: str, attempts: int = 6) -> T:
    """Retry a storage call with exponential backoff, so a DB restart does not lose a result."""
    delay = 1.0
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except (optuna.exceptions.StorageInternalError, SQLAlchemyError, OSError) as exc:
            if attempt == attempts:
                raise
            log.warning("%s failed (%s); retrying in %.0f s", what, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
    raise AssertionError("unreachable")
