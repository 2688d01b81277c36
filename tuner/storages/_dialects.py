"""The SQL dialects tuner runs on, one row each: how a storage opens and how claims lock.

A dialect (SQLite, PostgreSQL, MySQL/MariaDB) is one :class:`Dialect` in
:data:`DIALECTS`: what to check or prepare before opening, the engine options of the
pool, and the cross-process claim lock. Everything that differs between dialects is
here, so opening a storage (:mod:`tuner.storages._rdb`) and locking a claim never branch
on a dialect's name. A dialect without a cross-process lock has no row and is refused:
workers that could not exclude each other would duplicate grid points.

("Backend" is reserved for the Keras backend; SQLAlchemy calls these dialects too.)
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy
from sqlalchemy.exc import SQLAlchemyError

from tuner.errors import TunerError
from tuner.storages._lock import (
    LOCK_TIMEOUT_SECONDS,
    mysql_named_lock,
    postgres_advisory_lock,
    sqlite_file_lock,
)
from tuner.storages._url import (
    _in_memory,
    _in_memory_error,
    driver_connect_args,
    failure_reason,
    mask_password,
    parse_url,
    sqlite_path,
)

SQLITE_BUSY_TIMEOUT_SECONDS = LOCK_TIMEOUT_SECONDS


@dataclass(frozen=True)
class Dialect:
    """One SQL dialect tuner supports.

    Attributes:
        name: SQLAlchemy's name for it (``parse_url(url).get_backend_name()``).
        prepare: Checks and set-up before the storage opens: ``(url, connections a
            worker holds, must_exist)``; raises a one-line TunerError.
        engine_options: The pool's SQLAlchemy engine options: ``(url, pool_size)``.
        lock: The cross-process claim lock: ``(url, name)`` to a context manager.
        after_open: Set-up under the schema lock, before Optuna touches the tables.
    """

    name: str
    prepare: Callable[[str, int, bool], None]
    engine_options: Callable[[str, int], dict[str, object]]
    lock: Callable[[str, str], AbstractContextManager[None]]
    after_open: Callable[[str], None] = lambda url: None


def dialect_of(url: str) -> Dialect:
    """The dialect of a storage URL, or one line saying why it cannot be used.

    Raises:
        TunerError: An SQLite database in memory (lost with its process, invisible to
            the workers), the ``mariadb://`` dialect, or a dialect without a row here.
    """
    parsed = parse_url(url)
    name = parsed.get_backend_name()
    if name == "sqlite" and _in_memory(parsed):
        raise _in_memory_error(url)
    if name == "mariadb":
        # SQLAlchemy's mariadb dialect is not one Optuna knows (it special-cases "mysql"):
        # MariaDB is served, and tested, through the mysql dialect.
        raise TunerError(
            f"storage {mask_password(url)}: use a mysql+pymysql://USER:PASSWORD@HOST:PORT/DB "
            "URL for MariaDB; the mariadb:// dialect is not supported"
        )
    if name not in DIALECTS:
        raise TunerError(
            f"storage {mask_password(url)}: the {name} dialect is not supported, because "
            "tuner has no cross-process lock for it and workers would duplicate grid points; "
            "use sqlite:///FILE.db, postgresql+psycopg://... or mysql+pymysql://..."
        )
    return DIALECTS[name]


def check_supported(url: str) -> None:
    """Refuse a URL whose dialect tuner cannot run on (see :func:`dialect_of`)."""
    dialect_of(url)


@contextlib.contextmanager
def claim_lock(url: str, name: str) -> Iterator[None]:
    """Hold the cross-process lock called ``name`` (a study name) on this storage.

    Args:
        url: The storage URL; its dialect picks the kind of lock.
        name: What is locked: a study name, or ``SCHEMA_LOCK`` while opening a storage.

    Raises:
        TunerError: The dialect has no cross-process lock, or the lock was not free
            within ``LOCK_TIMEOUT_SECONDS``.
    """
    with dialect_of(url).lock(url, name):
        yield


def _prepare_sqlite(url: str, connections: int, must_exist: bool) -> None:
    path = sqlite_path(url)
    assert path is not None  # in-memory databases are refused by dialect_of
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


def _enable_wal(url: str) -> None:
    """WAL lets readers (the dashboard, `tuner status`) run while a worker writes."""
    path = sqlite_path(url)
    assert path is not None  # in-memory databases are refused by dialect_of
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS)) as db:
            db.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:
        raise TunerError(f"cannot open SQLite database {path}: {exc}") from None


def _sqlite_engine(url: str, pool_size: int) -> dict[str, object]:
    return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}}


def _postgres_engine(url: str, pool_size: int) -> dict[str, object]:
    # Exactly the connections a worker uses at once (its main thread and its heartbeat
    # thread), plus the claim lock's: a fleet's demand on the server is predictable.
    return {
        "pool_size": pool_size,
        "max_overflow": 0,
        "pool_timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
        "pool_pre_ping": True,
        "connect_args": driver_connect_args(url),
    }


def _mysql_engine(url: str, pool_size: int) -> dict[str, object]:
    # MySQL closes idle connections after wait_timeout; recycle before it does.
    return {"pool_size": pool_size, "pool_pre_ping": True, "pool_recycle": 3600}


CONNECTION_ROOM_SQL = """
SELECT current_setting('max_connections')::int
         - current_setting('superuser_reserved_connections')::int AS usable,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS used,
       (SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user) AS role_limit,
       (SELECT count(*) FROM pg_stat_activity WHERE usename = current_user) AS role_used,
       inet_server_port() AS server_port
"""


def _check_connection_room(url: str, needed: int, must_exist: bool) -> None:
    """Refuse to start, with the numbers, when the server has no room for this worker.

    Otherwise the worker would start, train, and die later on a pool timeout.
    """
    parsed = parse_url(url)
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
        raise TunerError(
            f"cannot open storage {mask_password(url)}: {failure_reason(exc, url)}"
        ) from None
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


def _nothing_to_prepare(url: str, connections: int, must_exist: bool) -> None:
    return None


DIALECTS: dict[str, Dialect] = {
    dialect.name: dialect
    for dialect in (
        Dialect("sqlite", _prepare_sqlite, _sqlite_engine, sqlite_file_lock, _enable_wal),
        Dialect("postgresql", _check_connection_room, _postgres_engine, postgres_advisory_lock),
        Dialect("mysql", _nothing_to_prepare, _mysql_engine, mysql_named_lock),
    )
}
"""Every dialect tuner runs on, by SQLAlchemy's name for it."""
SUPPORTED_DIALECTS = tuple(DIALECTS)
