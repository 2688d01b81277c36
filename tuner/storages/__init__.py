"""Storages: where trials live, how workers share them, and the lock their claims take.

An Optuna RDB storage on SQLite (the default, nothing to set up), PostgreSQL or MySQL;
other back ends are refused because their workers could not exclude each other.
"""

from tuner.storages._lock import LOCK_TIMEOUT_SECONDS, claim_lock
from tuner.storages._optuna_internals import (
    TrialLedger,
    find_stale_trials,
    find_trials_without_heartbeat,
    recent_durations,
)
from tuner.storages._rdb import DEFAULT_HEARTBEAT_SECONDS, SCHEMA_LOCK, open_storage
from tuner.storages._retry import with_retries
from tuner.storages._url import (
    DEFAULT_STORAGE,
    SUPPORTED_BACKENDS,
    artifact_dir,
    check_supported,
    mask_password,
    parse_url,
    resolve_url,
    sqlite_path,
)

__all__ = [
    "DEFAULT_HEARTBEAT_SECONDS",
    "DEFAULT_STORAGE",
    "LOCK_TIMEOUT_SECONDS",
    "SCHEMA_LOCK",
    "SUPPORTED_BACKENDS",
    "TrialLedger",
    "artifact_dir",
    "check_supported",
    "claim_lock",
    "find_stale_trials",
    "find_trials_without_heartbeat",
    "mask_password",
    "open_storage",
    "parse_url",
    "recent_durations",
    "resolve_url",
    "sqlite_path",
    "with_retries",
]
