"""Storage URLs: which one applies, what it points at, and how to print it safely.

Every URL tuner prints or logs goes through :func:`mask_password` first: storage URLs
carry database passwords, and terminals, CI logs and ``docker compose logs`` are read
by more people than the database is.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from urllib.parse import unquote, unquote_plus

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from tuner.errors import TunerError

DEFAULT_STORAGE = "sqlite:///tuner.db"


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


MAX_STORAGE_FILE_BYTES = 64 * 1024
"""Largest TUNER_STORAGE_FILE read (a URL is a line; a FIFO or a huge file is refused)."""


def _url_from_file(path: Path) -> str:
    """The storage URL in ``path`` (TUNER_STORAGE_FILE), refused unless mode 0600 or stricter."""
    try:
        status = path.stat()
        mode = status.st_mode
        if not stat.S_ISREG(mode) or status.st_size > MAX_STORAGE_FILE_BYTES:
            raise TunerError(
                f"TUNER_STORAGE_FILE {path} is not a regular file of at most "
                f"{MAX_STORAGE_FILE_BYTES} bytes: write the storage URL in a small file"
            )
        if mode & 0o077:
            raise TunerError(
                f"TUNER_STORAGE_FILE {path} is readable by others (mode {mode & 0o777:o}): "
                "it holds a password; run chmod 600 on it"
            )
        with path.open("rb") as handle:
            text = handle.read(MAX_STORAGE_FILE_BYTES).decode()
        lines = [line.strip() for line in text.splitlines()]
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise TunerError(f"TUNER_STORAGE_FILE {path} cannot be read: {reason}") from None
    found = next((line for line in lines if line), None)
    if found is None:
        raise TunerError(f"TUNER_STORAGE_FILE {path} is empty: write the storage URL in it")
    return found


def parse_url(url: str) -> URL:
    """The parsed URL, or one line (never the password) for text that is not a usable one.

    Refused: text that is not a database URL, a port that is not a number, a password or
    user name holding a raw ``@`` (SQLAlchemy would read the rest as the host and send part
    of the password to DNS and into the driver's error).
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise TunerError(
            f"storage URL '{mask_password(url)}' is not a database URL; use sqlite:///FILE.db, "
            "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB or "
            "mysql+pymysql://USER:PASSWORD@HOST:PORT/DB"
        ) from None
    except ValueError:
        # int() of the port: SQLAlchemy lets its ValueError through.
        raise TunerError(
            f"storage URL '{mask_password(url)}': the port is not a number from 1 to 65535"
        ) from None
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise TunerError(
            f"storage URL '{mask_password(url)}': the port is not a number from 1 to 65535"
        )
    if (
        parsed.get_backend_name() != "sqlite"
        and "@" in f"{parsed.host or ''}{parsed.database or ''}"
    ):
        raise TunerError(
            f"storage URL '{mask_password(url)}': the password or user name holds an '@'; "
            "URL-encode it (@ as %40, : as %3A, / as %2F; urllib.parse.quote(PASSWORD, safe=''))"
        )
    return parsed


_QUERY_SECRET = re.compile(r"(?i)([?&;][^=&?#;]*(?:password|passwd|pwd)[^=&;]*=)([^&;]*)")
"""A query parameter whose key names a password (``password``, pymysql's ``passwd``, ``pwd``,
``db_password``...): its value is a secret too."""


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
"""A URL's scheme and the ``//`` that opens its authority."""
_KNOWN_SCHEME = re.compile(r"(?i)(sqlite|postgres|postgresql|mysql|mariadb)(\+[^:/]*)?://")
"""The database schemes tuner knows: their ``://`` is surely no part of a password."""


def _credentials(url: str) -> tuple[int, int, int] | None:
    """Where the ``user:password`` part of ``url`` lies: (start, colon, end), or None.

    Read from the text itself, not from SQLAlchemy, so that URLs SQLAlchemy refuses (a
    missing colon after the scheme, a bad port) are covered too. The authority starts after
    the scheme's ``://`` (else a ``//`` before any ``:``, else the start of the text) and the
    credentials end at the last ``@``: a password may hold ``@``, ``/``, ``?`` or ``:``, so
    anything up to the last ``@`` may be part of it, and hiding too much is better than
    printing a password.
    """
    scheme = _SCHEME.match(url)
    if scheme:
        start = scheme.end()
    else:
        # No scheme: a '//' opens the authority only before the first ':' (one after it
        # may be part of the password: 'u:00//@h').
        slashes, first_colon = url.find("//"), url.find(":")
        before = slashes >= 0 and (first_colon < 0 or slashes < first_colon)
        start = slashes + 2 if before else 0
    end = url.rfind("@")
    if end < start:
        return None
    colon = url.find(":", start, end)
    if colon < 0 and scheme and _KNOWN_SCHEME.match(url) is None:
        # No ':' after an unknown 'scheme://': it may be a user and a password holding
        # '//' ('u://00@h'). Read it so: hiding too much is better than printing it.
        start, colon = 0, url.find(":", 0, end)
    if colon < 0:
        return None
    return start, colon, end


def mask_password(url: str) -> str:
    """The URL as safe to print: any password, in the user part, the query or elsewhere, as ***.

    Works on text that is no valid URL at all: whatever the user typed is printed only
    after this.
    """
    masked = url
    found = _credentials(url)
    if found is not None:
        _, colon, end = found
        masked = f"{url[: colon + 1]}***{url[end:]}"
    # The password may also be spelled elsewhere (a database or application name).
    return scrub(_QUERY_SECRET.sub(r"\1***", masked), url)


def secrets_of(url: str) -> list[str]:
    """Every password ``url`` holds, as written and decoded, longest first (for scrubbing
    a driver's message, which may quote what it was given)."""
    found: set[str] = set()
    credentials = _credentials(url)
    if credentials is not None:
        _, colon, end = credentials
        found.update({url[colon + 1 : end], unquote(url[colon + 1 : end])})
    for _, value in _QUERY_SECRET.findall(url):
        found.update({value, unquote_plus(value)})
    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        password = None
    if password:
        found.add(str(password))
    # Shorter than 3 characters is no secret, and scrubbing it would garble the message.
    return sorted((secret for secret in found if len(secret) >= 3), key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's complaint about ``url``) with every password of ``url`` as ***."""
    for secret in secrets_of(url):
        text = text.replace(secret, "***")
    return text


def sqlite_path(url: str) -> Path | None:
    """The database file of an SQLite URL; None for other back ends.

    Raises:
        TunerError: An in-memory SQLite database (see :func:`check_supported`), or a path
            that names no file (``~nobody``, a NUL byte).
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if _in_memory(parsed):
        raise _in_memory_error(url)
    try:
        return Path(str(parsed.database)).expanduser().resolve()
    except (RuntimeError, ValueError, OSError) as exc:
        raise TunerError(f"storage {mask_password(url)}: not a usable file path ({exc})") from None


def _in_memory(parsed: URL) -> bool:
    return parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory"


def _in_memory_error(url: str) -> TunerError:
    return TunerError(
        f"storage {mask_password(url)}: an SQLite database in memory is lost when the process "
        "ends, and tuner's workers run in other processes that cannot see it; "
        "use a file, sqlite:///FILE.db"
    )


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


def failure_reason(exc: BaseException, url: str) -> str:
    """The first line of a driver's complaint, scrubbed of every password in the URL."""
    while exc.__cause__ is not None and not str(exc):
        exc = exc.__cause__
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return scrub(text[0] if text else type(exc).__name__, url)


def driver_connect_args(url: str) -> dict[str, object]:
    """Driver options every connection to this storage gets.

    psycopg 3 prepares a statement after five executions; a transaction-mode pooler
    (PgBouncer before 1.21) hands the next transaction another server connection, where
    that prepared statement does not exist. Without preparing, both set-ups work.
    """
    if parse_url(url).drivername == "postgresql+psycopg":
        return {"prepare_threshold": None}
    return {}
