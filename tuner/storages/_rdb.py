"""Opening an Optuna RDB storage so that many workers, the dashboard and status share it.

Bare Optuna leaves this to the user: WAL and a long busy timeout on SQLite, a
pre-pinged pool on PostgreSQL and MySQL, heartbeats everywhere, and table creation
serialised (two processes creating Optuna's tables at once collide), and tuner's own
table of point holders beside Optuna's (:mod:`tuner.storages._point_claims`). What differs per
dialect is its row in :mod:`tuner.storages._dialects`. Every failure becomes one
:class:`~tuner.errors.TunerError` naming the masked URL.
"""

from __future__ import annotations

import optuna

from tuner.errors import TunerError
from tuner.storages._dialects import claim_lock, dialect_of
from tuner.storages._point_claims import create_point_claims
from tuner.storages._url import failure_reason, mask_password

DEFAULT_HEARTBEAT_SECONDS = 10
SCHEMA_LOCK = "tuner:schema"


def open_storage(
    url: str,
    *,
    heartbeat_interval: int = DEFAULT_HEARTBEAT_SECONDS,
    grace_period: int | None = None,
    must_exist: bool = False,
    pool_size: int = 2,
) -> optuna.storages.RDBStorage:
    """An RDBStorage tuned for concurrent workers, or a clear error naming the masked URL.

    ``must_exist`` guards workers against a mistyped SQLite path, which SQLite would
    otherwise silently turn into a new, empty database.
    """
    dialect = dialect_of(url)
    # The pool's connections and the claim lock's own.
    dialect.prepare(url, pool_size + 1, must_exist)
    try:
        # Optuna creates its tables when it finds none, and two processes doing so at
        # once on a new database collide ("table ... already exists"): serialise it.
        with claim_lock(url, SCHEMA_LOCK):
            dialect.after_open(url)
            storage = optuna.storages.RDBStorage(
                url,
                engine_kwargs=dialect.engine_options(url, pool_size),
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period or 3 * heartbeat_interval,
            )
            create_point_claims(storage.engine)
            return storage
    except TunerError:
        raise
    except Exception as exc:
        raise TunerError(
            f"cannot open storage {mask_password(url)}: {failure_reason(exc, url)}"
        ) from None
