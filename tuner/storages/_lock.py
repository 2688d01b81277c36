"""The claim lock: mutual exclusion across every worker of one study, on any machine.

Optuna cannot make "read the trials, then create one" atomic (docs/claims.md), so every
claim runs under this lock. Each supported back end gets a lock that holds across
processes and machines; a back end without one is refused (``check_supported``) rather
than silently given an in-process lock that would let workers duplicate grid points.

- SQLite file: a file lock beside the database (all its workers share the filesystem).
- PostgreSQL: a session advisory lock keyed by the study name.
- MySQL / MariaDB: a named lock (``GET_LOCK``), likewise held by the session.
- In-memory SQLite: only one process can see it, so a thread lock is enough.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import zlib
from collections.abc import Iterator

import sqlalchemy
from filelock import FileLock

from tuner.errors import TunerError
from tuner.storages._url import check_supported, mask_password, parse_url, sqlite_path

LOCK_TIMEOUT_SECONDS = 120
"""How long a claim waits for the lock before giving up with an error."""

_thread_locks: dict[str, threading.Lock] = {}
_lock_engines: dict[str, sqlalchemy.engine.Engine] = {}


@contextlib.contextmanager
def claim_lock(url: str, name: str) -> Iterator[None]:
    """Hold the cross-process lock called ``name`` (a study name) on this storage."""
    check_supported(url)
    backend = parse_url(url).get_backend_name()
    path = sqlite_path(url)
    if path is not None:
        with FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_SECONDS):
            yield
    elif backend == "postgresql":
        with _postgres_advisory_lock(url, name):
            yield
    elif backend == "mysql":
        with _mysql_named_lock(url, name):
            yield
    else:
        with _thread_locks.setdefault(f"{url}/{name}", threading.Lock()):
            yield


def _engine(url: str) -> sqlalchemy.engine.Engine:
    # One connection per process, kept: the lock belongs to a session, and opening a
    # connection per claim would cost more than the claim itself.
    engine = _lock_engines.get(url)
    if engine is None:
        engine = sqlalchemy.create_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=True)
        _lock_engines[url] = engine
    return engine


@contextlib.contextmanager
def _postgres_advisory_lock(url: str, name: str) -> Iterator[None]:
    key = zlib.crc32(f"tuner:{name}".encode())
    with _engine(url).connect() as connection:
        connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            connection.commit()


@contextlib.contextmanager
def _mysql_named_lock(url: str, name: str) -> Iterator[None]:
    # MySQL limits lock names to 64 characters; a digest keeps long study names apart.
    key = "tuner:" + hashlib.sha256(name.encode()).hexdigest()[:40]
    with _engine(url).connect() as connection:
        got = connection.execute(
            sqlalchemy.text("SELECT GET_LOCK(:key, :timeout)"),
            {"key": key, "timeout": LOCK_TIMEOUT_SECONDS},
        ).scalar()
        if got != 1:
            raise TunerError(
                f"storage {mask_password(url)}: could not take the claim lock for '{name}' "
                f"within {LOCK_TIMEOUT_SECONDS} s; is another worker stuck holding it?"
            )
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text("SELECT RELEASE_LOCK(:key)"), {"key": key})
            connection.commit()
