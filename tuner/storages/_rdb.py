"""Opening an Optuna RDB storage so that many workers, the dashboard and status share it.

Bare Optuna leaves this to the user: WAL and a long busy timeout on SQLite, a
pre-pinged pool on PostgreSQL and MySQL, heartbeats everywhere, and table creation
serialised (two processes creating Optuna's tables at once collide). Every failure
becomes one :class:`~tuner.errors.TunerError` naming the masked URL.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import optuna
import sqlalchemy
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from tuner.errors import TunerError
from tuner.storages._lock import LOCK_TIMEOUT_SECONDS, claim_lock
from tuner.storages._url import (
    check_supported,
    driver_connect_args,
    mask_password,
    parse_url,
    scrub,
    sqlite_path,
)

DEFAULT_HEARTBEAT_SECONDS = 10
SQLITE_BUSY_TIMEOUT_SECONDS = LOCK_TIMEOUT_SECONDS
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
    check_supported(url)
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    engine_kwargs: dict[str, object] = {}
    path = sqlite_path(url)
    if backend == "sqlite":
        if path is not None:
            if must_exist and not path.parent.is_dir():
                raise TunerError(
                    f"storage {mask_password(url)}: no such folder {path.parent}; check the "
                    "path, or create the study first with `tuner launch`"
                )
            if must_exist and not path.is_file():
                raise TunerError(
                    f"storage {mask_password(url)}: no such database file {path}; "
                    "check the path, or create the study first with `tuner launch`"
                )
            _prepare_folder(url, path)
        engine_kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
    elif backend == "postgresql":
        # Exactly the connections a worker uses at once (its main thread and its heartbeat
        # thread), plus the claim lock's: a fleet's demand on the server is predictable.
        engine_kwargs.update(
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=SQLITE_BUSY_TIMEOUT_SECONDS,
            pool_pre_ping=True,
            connect_args=driver_connect_args(url),
        )
        _check_connection_room(url, parsed, needed=pool_size + 1)
    elif backend == "mysql":
        # MySQL closes idle connections after wait_timeout; recycle before it does.
        engine_kwargs.update(pool_size=pool_size, pool_pre_ping=True, pool_recycle=3600)
    try:
        # Optuna creates its tables when it finds none, and two processes doing so at
        # once on a new database collide ("table ... already exists"): serialise it.
        with claim_lock(url, SCHEMA_LOCK):
            if path is not None:
                _enable_wal(path)
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period or 3 * heartbeat_interval,
            )
    except TunerError:
        raise
    except Exception as exc:
        raise TunerError(f"cannot open storage {mask_password(url)}: {_reason(exc, url)}") from None


CONNECTION_ROOM_SQL = """
SELECT current_setting('max_connections')::int
         - current_setting('superuser_reserved_connections')::int AS usable,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS used,
       (SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user) AS role_limit,
       (SELECT count(*) FROM pg_stat_activity WHERE usename = current_user) AS role_used,
       inet_server_port() AS server_port
"""


def _check_connection_room(url: str, parsed: URL, needed: int) -> None:
    """Refuse to start, with the numbers, when the server has no room for this worker.

    Otherwise the worker would start, train, and die later on a pool timeout.
    """
    try:
        engine = sqlalchemy.create_engine(
            url, poolclass=sqlalchemy.pool.NullPool, connect_args=driver_connect_args(url)
        )
        with engine.connect() as connection:
            usable, used, role_limit, role_used, server_port = connection.execute(
                sqlalchemy.text(CONNECTION_ROOM_SQL)
            ).one()
        engine.dispose()
    except SQLAlchemyError as exc:
        raise TunerError(f"cannot open storage {mask_password(url)}: {_reason(exc, url)}") from None
    if server_port is not None and server_port != (parsed.port or 5432):
        # The server listens elsewhere than we connected: a pooler (PgBouncer) or a port
        # mapping is in between. Through a pooler, our connections are not server
        # connections, so the server's numbers say nothing about room for this worker.
        return
    # The probe's own connection is counted in `used`; it is gone once we return.
    free = usable - used + 1
    if free < needed:
        raise TunerError(
            f"storage {mask_password(url)}: PostgreSQL has {free} free connection(s) "
            f"(max_connections less reserved {usable}, in use {used - 1}); a worker needs "
            f"{needed}: raise max_connections or run fewer workers"
        )
    if role_limit is not None and role_limit >= 0 and role_limit - role_used + 1 < needed:
        raise TunerError(
            f"storage {mask_password(url)}: role '{parsed.username}' has connection limit "
            f"{role_limit} with {role_used - 1} in use; a worker needs {needed}: "
            "raise the role's CONNECTION LIMIT or run fewer workers"
        )


def _prepare_folder(url: str, path: Path) -> None:
    """Create the database's folder if missing, and check a file can be made in it.

    The claim lock is a file beside the database: where none can be created (a read-only
    mount, ``/proc``), taking it would wait ``LOCK_TIMEOUT_SECONDS`` for nothing.
    """
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TunerError(
            f"storage {mask_password(url)}: cannot create the folder {folder} for the database "
            f"({exc.strerror or type(exc).__name__}); create it, or give a path in a folder "
            "you can write to"
        ) from None
    try:
        with open(str(path) + ".lock", "a"):
            pass
    except OSError as exc:
        raise TunerError(
            f"storage {mask_password(url)}: cannot create files in {folder} "
            f"({exc.strerror or type(exc).__name__}); give a path in a folder you can write to"
        ) from None


def _enable_wal(path: Path) -> None:
    """WAL lets readers (the dashboard, `tuner status`) run while a worker writes."""
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS)) as db:
            db.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:
        raise TunerError(f"cannot open SQLite database {path}: {exc}") from None


def _reason(exc: BaseException, url: str) -> str:
    """The first line of the driver's complaint, scrubbed of every password in the URL."""
    while exc.__cause__ is not None and not str(exc):
        exc = exc.__cause__
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return scrub(text[0] if text else type(exc).__name__, url)
