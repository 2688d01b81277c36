"""Where trials live: an Optuna RDB storage on SQLite (default) or PostgreSQL.

This module owns three things bare Optuna leaves to the user: picking the URL
(flag, ``$TUNER_STORAGE``, or ``sqlite:///tuner.db``), opening it so that many workers
can share it (WAL and a busy timeout on SQLite, a pre-pinged pool on PostgreSQL,
heartbeats on both), and a cross-process lock under which a worker claims its next
grid point. Every URL it prints has its password masked.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import optuna
import sqlalchemy
from filelock import FileLock
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from tuner.errors import TunerError

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_STORAGE = "sqlite:///tuner.db"
DEFAULT_HEARTBEAT_SECONDS = 10
SQLITE_BUSY_TIMEOUT_SECONDS = 120
SCHEMA_LOCK = "tuner:schema"
_process_locks: dict[str, threading.Lock] = {}


def resolve_url(url: str | None, environ: dict[str, str] | None = None) -> str:
    """The flag wins, then ``$TUNER_STORAGE``, then an SQLite file in the working directory."""
    environ = dict(os.environ) if environ is None else environ
    return url or environ.get("TUNER_STORAGE") or DEFAULT_STORAGE


def parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise TunerError(
            f"storage URL '{mask_password(url)}' is not a database URL; "
            "use sqlite:///FILE.db or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB"
        ) from None


def mask_password(url: str) -> str:
    """The URL as safe to print: SQLAlchemy's rendering with the password as ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # Not parseable, so hide anything between "://user:" and "@" by hand.
        head, sep, tail = url.partition("://")
        if sep and "@" in tail:
            credentials, _, host = tail.rpartition("@")
            user = credentials.split(":", 1)[0]
            return f"{head}://{user}:***@{host}"
        return url


def sqlite_path(url: str) -> Path | None:
    """The database file of an SQLite URL; None for other back ends and in-memory SQLite."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser().resolve()


def artifact_dir(url: str, environ: dict[str, str] | None = None) -> Path:
    """Where reports' pictures and models live for a storage: ``$TUNER_ARTIFACTS``, else
    a folder beside an SQLite file, else ``./tuner-artifacts`` (share it between machines
    the way you share the data, e.g. a volume in docker compose)."""
    environ = dict(os.environ) if environ is None else environ
    if environ.get("TUNER_ARTIFACTS"):
        return Path(environ["TUNER_ARTIFACTS"]).expanduser().resolve()
    path = sqlite_path(url)
    if path is not None:
        return path.with_name(path.name + ".artifacts")
    return Path.cwd() / "tuner-artifacts"


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
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    engine_kwargs: dict[str, object] = {}
    path = sqlite_path(url)
    if backend == "sqlite":
        if path is not None:
            if must_exist and not path.is_file():
                raise TunerError(
                    f"storage {mask_password(url)}: no such database file {path}; "
                    "check the path, or create the study first with `tuner launch`"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
    elif backend == "postgresql":
        engine_kwargs.update(pool_size=pool_size, max_overflow=2, pool_pre_ping=True)
        _check_connection_room(url, parsed, needed=pool_size + 1)
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
        raise TunerError(
            f"cannot open storage {mask_password(url)}: {_reason(exc, parsed)}"
        ) from None


CONNECTION_ROOM_SQL = """
SELECT current_setting('max_connections')::int
         - current_setting('superuser_reserved_connections')::int AS usable,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS used,
       (SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user) AS role_limit,
       (SELECT count(*) FROM pg_stat_activity WHERE usename = current_user) AS role_used
"""


def _check_connection_room(url: str, parsed: URL, needed: int) -> None:
    """Refuse to start, with the numbers, when the server has no room for this worker.

    Otherwise the worker would start, train, and die later on a pool timeout.
    """
    try:
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        with engine.connect() as connection:
            usable, used, role_limit, role_used = connection.execute(
                sqlalchemy.text(CONNECTION_ROOM_SQL)
            ).one()
        engine.dispose()
    except SQLAlchemyError as exc:
        raise TunerError(
            f"cannot open storage {mask_password(url)}: {_reason(exc, parsed)}"
        ) from None
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


def _enable_wal(path: Path) -> None:
    """WAL lets readers (the dashboard, `tuner status`) run while a worker writes."""
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS)) as db:
            db.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:
        raise TunerError(f"cannot open SQLite database {path}: {exc}") from None


def _reason(exc: BaseException, parsed: URL) -> str:
    """The first line of the driver's complaint, scrubbed of the password."""
    while exc.__cause__ is not None and not str(exc):
        exc = exc.__cause__
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    reason = text[0] if text else type(exc).__name__
    if parsed.password:
        reason = reason.replace(str(parsed.password), "***")
    return reason


@contextlib.contextmanager
def claim_lock(url: str, study_name: str) -> Iterator[None]:
    """Mutual exclusion across every worker of one study, on any machine sharing the storage.

    SQLite cannot make Optuna's read-then-create atomic (RELIABILITY.md, pitfall 4), so a
    file lock beside the database serialises claims; PostgreSQL gets a session advisory
    lock keyed by the study name, which works across machines.
    """
    parsed = parse_url(url)
    path = sqlite_path(url)
    if path is not None:
        with FileLock(str(path) + ".lock", timeout=SQLITE_BUSY_TIMEOUT_SECONDS):
            yield
    elif parsed.get_backend_name() == "postgresql":
        with _advisory_lock(url, study_name):
            yield
    else:
        with _process_locks.setdefault(f"{url}/{study_name}", threading.Lock()):
            yield


_lock_engines: dict[str, sqlalchemy.engine.Engine] = {}


@contextlib.contextmanager
def _advisory_lock(url: str, study_name: str) -> Iterator[None]:
    engine = _lock_engines.get(url)
    if engine is None:
        engine = sqlalchemy.create_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=True)
        _lock_engines[url] = engine
    key = zlib.crc32(f"tuner:{study_name}".encode())
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            connection.commit()


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
