"""Storages: where trials live, how workers share them, and the lock their claims take.

An Optuna RDB storage on SQLite (the default, nothing to set up), PostgreSQL or MySQL;
other dialects are refused because their workers could not exclude each other.
"""

from tuner.storages._dialects import (
    DIALECTS,
    SUPPORTED_DIALECTS,
    Dialect,
    check_supported,
    claim_lock,
    dialect_of,
)
from tuner.storages._lock import LOCK_TIMEOUT_SECONDS
from tuner.storages._optuna_internals import (
    TrialLedger,
    find_stale_trials,
    find_trials_without_heartbeat,
    recent_durations,
    set_intermediate_values,
)
from tuner.storages._point_claims import POINT_CLAIMS, point_holder, take_point
from tuner.storages._rdb import DEFAULT_HEARTBEAT_SECONDS, SCHEMA_LOCK, open_storage
from tuner.storages._retry import with_retries
from tuner.storages._url import (
    DEFAULT_STORAGE,
    artifact_dir,
    mask_password,
    parse_url,
    resolve_url,
    sqlite_path,
)

__all__ = [
    "DEFAULT_HEARTBEAT_SECONDS",
    "DEFAULT_STORAGE",
    "DIALECTS",
    "LOCK_TIMEOUT_SECONDS",
    "POINT_CLAIMS",
    "SCHEMA_LOCK",
    "SUPPORTED_DIALECTS",
    "Dialect",
    "TrialLedger",
    "artifact_dir",
    "check_supported",
    "claim_lock",
    "dialect_of",
    "find_stale_trials",
    "find_trials_without_heartbeat",
    "mask_password",
    "open_storage",
    "parse_url",
    "point_holder",
    "recent_durations",
    "resolve_url",
    "set_intermediate_values",
    "sqlite_path",
    "take_point",
    "with_retries",
]
