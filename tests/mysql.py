"""A real, throw-away MariaDB server on 127.0.0.1 for tests (never a mock).

Debian's ``mariadb-server`` package provides the binaries (``.ci/run`` installs it). Each
server gets its own data directory in a temporary folder and a free port, so tests
never touch a system MariaDB; it is stopped and its folder deleted on exit.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.helpers import free_port

PASSWORD = "tuner-test-pw"
"""The password of the ``tuner`` user every test database is owned by."""

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
_SBIN = (Path("/usr/sbin"), Path("/usr/bin"))


def _binary(*names: str) -> str | None:
    """The first of ``names`` found on PATH or in the system binary folders."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
        for folder in _SBIN:
            if (folder / name).is_file():
                return str(folder / name)
    return None


def missing() -> str | None:
    """Why a MariaDB test server cannot run here, or None when it can."""
    if _binary("mariadb-install-db", "mysql_install_db") is None:
        return "MariaDB server not installed (apt-get install mariadb-server; .ci/run does)"
    if _binary("mariadbd", "mysqld") is None:
        return "MariaDB server binary (mariadbd) not found (apt-get install mariadb-server)"
    if importlib.util.find_spec("pymysql") is None:
        return "pymysql not installed (pip install -e '.[dev]' or '.[mysql]')"
    return None


def available() -> bool:
    """True when the MariaDB binaries and the pymysql driver are installed."""
    return missing() is None


class MariaDBServer:
    """One running ``mariadbd`` with its own data directory, socket and port.

    Args:
        base: The temporary folder holding the data directory, socket and log.
        port: The TCP port it listens on, on 127.0.0.1 only.
    """

    def __init__(self, base: Path, port: int) -> None:
        self.base, self.port = base, port
        self.socket = base / "mariadb.sock"
        self.log = base / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        """The server's command line: no config files read, nothing shared with the system."""
        daemon = _binary("mariadbd", "mysqld")
        assert daemon is not None
        # Root may only run the server when it says so; anyone else must not say it.
        as_user = ["--user=root"] if os.geteuid() == 0 else []
        return [
            daemon,
            "--no-defaults",
            *as_user,
            f"--datadir={self.base / 'data'}",
            f"--socket={self.socket}",
            f"--pid-file={self.base / 'mariadb.pid'}",
            f"--log-error={self.log}",
            f"--tmpdir={self.base}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            # Match clients by address, so no 'localhost' (anonymous) account shadows tuner@%.
            "--skip-name-resolve",
            "--max-connections=200",
            "--innodb-buffer-pool-size=32M",
            "--innodb-flush-log-at-trx-commit=2",
        ]

    def start(self) -> None:
        """Start the server and wait until it accepts connections on its socket."""
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Keep Ctrl-C of an interactive pytest from reaching the server before cleanup.
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited with {self.process.returncode}: {self._log()}")
            try:
                self.query("SELECT 1")
                return
            except Exception:  # not accepting connections yet
                time.sleep(0.2)
        raise RuntimeError(
            f"mariadbd did not start in {START_TIMEOUT_SECONDS:.0f} s: {self._log()}"
        )

    def stop(self) -> None:
        """Shut the server down cleanly (SIGTERM), killing it if it does not stop in time."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def restart(self, down_seconds: float = 2.0) -> None:
        """Stop the server (dropping every connection), stay down a while, start again."""
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def query(self, sql: str, args: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement as the server's root over its Unix socket; the rows it returns."""
        import pymysql

        connection = pymysql.connect(
            unix_socket=str(self.socket), user="root", password="", autocommit=True
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, args)
                return list(cursor.fetchall())
        finally:
            connection.close()

    def new_database(self) -> str:
        """A fresh database the password-protected user ``tuner`` owns; returns its URL."""
        name = f"tuner_{uuid.uuid4().hex[:10]}"
        self.query(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        self.query(f"GRANT ALL PRIVILEGES ON {name}.* TO 'tuner'@'%'")
        return f"mysql+pymysql://tuner:{PASSWORD}@127.0.0.1:{self.port}/{name}"

    def _log(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no server log)"


@contextmanager
def running_server() -> Iterator[MariaDBServer]:
    """A MariaDB server with a user ``tuner`` (password :data:`PASSWORD`), stopped on exit."""
    install = _binary("mariadb-install-db", "mysql_install_db")
    assert install is not None, missing()
    base = Path(tempfile.mkdtemp(prefix="tuner-mariadb-"))
    server = MariaDBServer(base, free_port())
    try:
        subprocess.run(
            [
                install,
                "--no-defaults",
                *(["--user=root"] if os.geteuid() == 0 else []),
                f"--datadir={base / 'data'}",
                # root@localhost with an empty password over the socket, whoever runs this.
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        server.start()
        server.query("CREATE USER 'tuner'@'%%' IDENTIFIED BY %s", (PASSWORD,))
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
