"""The claim locks: mutual exclusion across every worker of one study, on any machine.

Optuna cannot make "read the trials, then create one" atomic (docs/claims.md), so every
claim runs under a lock. Each supported dialect has one that holds across processes and
machines (its row in :mod:`tuner.storages._dialects` names it); a dialect without one is
refused rather than silently given an in-process lock that would let workers duplicate
grid points.

- SQLite file: a file lock beside the database (all its workers share the filesystem).
- PostgreSQL: a transaction-level advisory lock keyed by the study name (it holds
  through PgBouncer in transaction mode, where session locks break).
- MySQL / MariaDB: a named lock (``GET_LOCK``) keyed by database and study name, likewise
  held by the session.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import time
import zlib
from collections.abc import Iterator

import sqlalchemy
from filelock import FileLock, Timeout
from sqlalchemy.exc import SQLAlchemyError

from tuner.errors import TunerError
from tuner.storages._url import (
    driver_connect_args,
    mask_password,
    parse_url,
    sqlite_path,
)

log = logging.getLogger(__name__)

LOCK_TIMEOUT_SECONDS = 120
"""How long a claim waits for the lock before giving up with an error."""

_lock_engines: dict[str, sqlalchemy.engine.Engine] = {}


@contextlib.contextmanager
def sqlite_file_lock(url: str, name: str) -> Iterator[None]:
    """A file lock beside the database file (the whole database: all its workers share
    the filesystem, and claims are short)."""
    path = sqlite_path(url)
    assert path is not None  # in-memory databases are refused before any lock
    lock = FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_SECONDS)
    try:
        lock.acquire()
    except Timeout:
        raise _timed_out(url, name) from None
    try:
        yield
    finally:
        lock.release()


def _timed_out(url: str, name: str) -> TunerError:
    return TunerError(
        f"storage {mask_password(url)}: could not take the claim lock for '{name}' "
        f"within {LOCK_TIMEOUT_SECONDS} s; is another worker stuck holding it?"
    )


def _engine(url: str) -> sqlalchemy.engine.Engine:
    # One connection per process, kept: the lock belongs to a session, and opening a
    # connection per claim would cost more than the claim itself. Threads of one process
    # queue for it as long as they would queue for the lock itself.
    engine = _lock_engines.get(url)
    if engine is None:
        engine = sqlalchemy.create_engine(
            url,
            pool_size=1,
            max_overflow=0,
            pool_timeout=LOCK_TIMEOUT_SECONDS,
            pool_pre_ping=True,
            connect_args=driver_connect_args(url),
        )
        _lock_engines[url] = engine
    return engine


def _forget_inherited_engines() -> None:
    # A forked child must not use (or close) the parent's connection, whose session may
    # hold the parent's lock: SQLAlchemy's recipe is dispose(close=False) in the child.
    for engine in _lock_engines.values():
        engine.dispose(close=False)
    _lock_engines.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_engines)


def _release(connection: sqlalchemy.engine.Connection, sql: str, key: object, url: str) -> None:
    """Run the unlock statement; a lost connection has released the lock already.

    The guarded work is done by then (a claim has created its trials): raising here would
    make the caller redo it, so a failed unlock is logged and the connection dropped.
    """
    try:
        released = connection.execute(sqlalchemy.text(sql), {"key": key}).scalar()
        connection.commit()
    except SQLAlchemyError as exc:
        log.warning(
            "storage %s: the claim lock's connection was lost while held (%s); "
            "the server has released the lock",
            mask_password(url),
            type(exc).__name__,
        )
        connection.invalidate()
        return
    if released not in (1, True):
        # 0 / false: another session holds it; NULL: nobody does. Either way the lock
        # was lost while the work ran (say, the session was killed on the server).
        log.warning("storage %s: the claim lock was not held at release", mask_password(url))


@contextlib.contextmanager
def postgres_advisory_lock(url: str, name: str) -> Iterator[None]:
    # A transaction-level lock, held by one transaction that lasts exactly as long as the
    # claim: it works through a transaction-mode pooler (PgBouncer), which pins a server
    # connection to a client only for a transaction, and where session locks would leak
    # to whichever client gets that server connection next. Waiting is done by retrying
    # pg_try_advisory_xact_lock in short transactions, not by blocking inside one: blocked
    # waiters would each hold one of the pooler's few server connections, starving the
    # holder's own storage calls until the lock timeout.
    key = zlib.crc32(f"tuner:{name}".encode())
    deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
    pause = 0.02
    with _engine(url).connect() as connection:
        while True:
            transaction = connection.begin()
            taken = connection.execute(
                sqlalchemy.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}
            ).scalar()
            if taken:
                break
            transaction.rollback()
            if time.monotonic() > deadline:
                raise _timed_out(url, name)
            time.sleep(random.uniform(pause / 2, pause))
            pause = min(pause * 2, 0.5)
        try:
            yield
        finally:
            _end_transaction(transaction, connection, url)


def _end_transaction(
    transaction: sqlalchemy.engine.Transaction, connection: sqlalchemy.engine.Connection, url: str
) -> None:
    """Commit, which releases the lock; a lost connection has released it already.

    The guarded work is done by then (a claim has created its trials): raising here would
    make the caller redo it, so a failed commit is logged and the connection dropped.
    """
    try:
        transaction.commit()
    except SQLAlchemyError as exc:
        log.warning(
            "storage %s: the claim lock's connection was lost while held (%s); "
            "the server has released the lock",
            mask_password(url),
            type(exc).__name__,
        )
        connection.invalidate()


def _mysql_lock_name(url: str, name: str) -> str:
    """The ``GET_LOCK`` name of a claim lock on a MySQL database.

    Named locks are server-wide, unlike PostgreSQL's advisory locks (per database), so
    the name includes the database; a digest keeps it within MySQL's 64 characters.
    """
    scoped = f"{parse_url(url).database}/{name}"
    return "tuner:" + hashlib.sha256(scoped.encode()).hexdigest()[:40]


@contextlib.contextmanager
def mysql_named_lock(url: str, name: str) -> Iterator[None]:
    key = _mysql_lock_name(url, name)
    with _engine(url).connect() as connection:
        got = connection.execute(
            sqlalchemy.text("SELECT GET_LOCK(:key, :timeout)"),
            {"key": key, "timeout": LOCK_TIMEOUT_SECONDS},
        ).scalar()
        if got != 1:
            # 0: timed out; NULL: the server failed to take it (e.g. killed session).
            raise _timed_out(url, name)
        try:
            yield
        finally:
            _release(connection, "SELECT RELEASE_LOCK(:key)", key, url)
