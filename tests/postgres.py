"""A real, throw-away PostgreSQL 15 server on 127.0.0.1 for tests (never a mock)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PASSWORD = "tuner-test-pw"


def available() -> bool:
    return (PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists()


class PostgresServer:
    def __init__(self, base: Path, port: int, as_postgres: list[str], options: str) -> None:
        self.base, self.port, self.as_postgres, self.options = base, port, as_postgres, options

    def restart(self, down_seconds: float = 2.0) -> None:
        """Stop the server (dropping every connection), stay down a while, start again."""
        import time

        data = str(self.base / "data")
        pg_ctl = str(PG_BIN / "pg_ctl")
        subprocess.run(
            [*self.as_postgres, pg_ctl, "-D", data, "-m", "fast", "-w", "stop"],
            check=True,
            capture_output=True,
        )
        time.sleep(down_seconds)
        subprocess.run(
            [
                *self.as_postgres,
                pg_ctl,
                "-D",
                data,
                "-o",
                self.options,
                "-l",
                str(self.base / "server.log"),
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
        )

    def psql(self, sql: str) -> None:
        subprocess.run(
            [
                *self.as_postgres,
                _psql_path(),
                "-h",
                str(self.base),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        )

    def new_database(self) -> str:
        """A fresh database owned by a password-protected role; returns its URL."""
        name = f"tuner_{uuid.uuid4().hex[:10]}"
        self.psql(f"CREATE DATABASE {name} OWNER tuner")
        return f"postgresql+psycopg://tuner:{PASSWORD}@127.0.0.1:{self.port}/{name}"


def _psql_path() -> str:
    found = shutil.which("psql")
    return found or str(PG_BIN / "psql")


@contextmanager
def running_server(max_connections: int = 200) -> Iterator[PostgresServer]:
    # The server refuses to run as root, and postgres must be able to reach its folder.
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="tuner-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    data, port = base / "data", free_port()
    run = {"check": True, "capture_output": True, "text": True}
    subprocess.run(
        [
            *as_postgres,
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ],
        **run,
    )
    options = (
        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections={max_connections}"
    )
    subprocess.run(
        [
            *as_postgres,
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(base / "server.log"),
            "-w",
            "start",
        ],
        **run,
    )
    server = PostgresServer(base, port, as_postgres, options)
    try:
        server.psql(f"CREATE ROLE tuner LOGIN PASSWORD '{PASSWORD}'")
        yield server
    finally:
        subprocess.run(
            [*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


PGBOUNCER = Path("/usr/sbin/pgbouncer")


@contextmanager
def running_pgbouncer(server: PostgresServer, pool_size: int) -> Iterator[int]:
    """PgBouncer in transaction mode in front of ``server``, on 127.0.0.1; yields its port.

    Each database gets at most ``pool_size`` server connections however many clients
    connect, which is what lets hundreds of workers share one PostgreSQL.
    """
    base = Path(tempfile.mkdtemp(prefix="tuner-bouncer-"))
    port = free_port()
    (base / "userlist.txt").write_text(f'"tuner" "{PASSWORD}"\n')
    (base / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host=127.0.0.1 port={server.port}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = scram-sha-256\nauth_file = {base / 'userlist.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {pool_size}\nmax_client_conn = 500\n"
        f"logfile = {base / 'pgbouncer.log'}\npidfile = {base / 'pgbouncer.pid'}\n"
    )
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        for child in base.iterdir():
            shutil.chown(child, "postgres", "postgres")
    # Its log goes to the logfile; what it also writes to stderr (every connection) goes
    # nowhere: a pipe nobody reads fills after a few hundred connections and then blocks
    # PgBouncer itself (seen with 64 workers in bench/fleet.py: every client stalled).
    process = subprocess.Popen(
        [*server.as_postgres, str(PGBOUNCER), str(base / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import socket
        import time

        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (
                        (base / "pgbouncer.log").read_text()
                        if (base / "pgbouncer.log").exists()
                        else ""
                    )
                    raise RuntimeError(f"pgbouncer did not start: {log}") from None
                time.sleep(0.2)
        yield port
    finally:
        # Through runuser the process we hold is not pgbouncer itself: stop it by its pid.
        pidfile = base / "pgbouncer.pid"
        if pidfile.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
        process.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)
