"""Storage URLs: which one applies, what it points at, and how to print it safely.

Every URL tuner prints or logs goes through :func:`mask_password` first: storage URLs
carry database passwords, and terminals, CI logs and ``docker compose logs`` are read
by more people than the database is.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from tuner.errors import TunerError

DEFAULT_STORAGE = "sqlite:///tuner.db"
SUPPORTED_BACKENDS = ("sqlite", "postgresql", "mysql")
"""Back ends on which workers get a real cross-process claim lock (tuner.storages._lock)."""


def resolve_url(url: str | None, environ: dict[str, str] | None = None) -> str:
    """The flag wins, then ``$TUNER_STORAGE``, then the file named by ``$TUNER_STORAGE_FILE``,
    then an SQLite file in the working directory.

    The file (a cluster job's way to pass a password that no command line, ``ps`` or
    ``sacct`` shows) holds the URL on its first non-blank line and must be readable by its
    owner only: a missing file or one the group or others may read is refused. Its content
    is never printed.
    """
    environ = dict(os.environ) if environ is None else environ
    if url or environ.get("TUNER_STORAGE"):
        return url or environ["TUNER_STORAGE"]
    if environ.get("TUNER_STORAGE_FILE"):
        return _url_from_file(Path(environ["TUNER_STORAGE_FILE"]).expanduser())
    return DEFAULT_STORAGE


def _url_from_file(path: Path) -> str:
    """The storage URL in ``path`` (TUNER_STORAGE_FILE), refused unless mode 0600 or stricter."""
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            raise TunerError(
                f"TUNER_STORAGE_FILE {path} is readable by others (mode {mode & 0o777:o}): "
                "it holds a password; run chmod 600 on it"
            )
        lines = [line.strip() for line in path.read_text().splitlines()]
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise TunerError(f"TUNER_STORAGE_FILE {path} cannot be read: {reason}") from None
    found = next((line for line in lines if line), None)
    if found is None:
        raise TunerError(f"TUNER_STORAGE_FILE {path} is empty: write the storage URL in it")
    return found


def parse_url(url: str) -> URL:
    """The parsed URL, or a clear error for text that is not a database URL."""
    try:
        return make_url(url)
    except ArgumentError:
        raise TunerError(
            f"storage URL '{mask_password(url)}' is not a database URL; use sqlite:///FILE.db, "
            "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB or "
            "mysql+pymysql://USER:PASSWORD@HOST:PORT/DB"
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


def check_supported(url: str) -> None:
    """Refuse a back end whose workers could not exclude each other when claiming.

    Raises:
        TunerError: One line naming the back end (and the masked URL) and what to use.
    """
    backend = parse_url(url).get_backend_name()
    if backend == "mariadb":
        # SQLAlchemy's mariadb dialect is not one Optuna knows (it special-cases "mysql"):
        # MariaDB is served, and tested, through the mysql dialect.
        raise TunerError(
            f"storage {mask_password(url)}: use a mysql+pymysql://USER:PASSWORD@HOST:PORT/DB "
            "URL for MariaDB; the mariadb:// dialect is not supported"
        )
    if backend not in SUPPORTED_BACKENDS:
        raise TunerError(
            f"storage {mask_password(url)}: back end '{backend}' is not supported, because "
            "tuner has no cross-process lock for it and workers would duplicate grid points; "
            "use sqlite:///FILE.db, postgresql+psycopg://... or mysql+pymysql://..."
        )


def driver_connect_args(url: str) -> dict[str, object]:
    """Driver options every connection to this storage gets.

    psycopg 3 prepares a statement after five executions; a transaction-mode pooler
    (PgBouncer before 1.21) hands the next transaction another server connection, where
    that prepared statement does not exist. Without preparing, both set-ups work.
    """
    if parse_url(url).drivername == "postgresql+psycopg":
        return {"prepare_threshold": None}
    return {}
