"""A real, throw-away PostgreSQL 15 server on 127.0.0.1 for tests (never a mock)."""

from __future__ import annotations

import os
import shutil
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
    def __init__(self, base: Path, port: int, as_postgres: list[str]) -> None:
        self.base, self.port, self.as_postgres = base, port, as_postgres
        self.options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=200"

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
def running_server() -> Iterator[PostgresServer]:
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
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=200"
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
    server = PostgresServer(base, port, as_postgres)
    try:
        server.psql(f"CREATE ROLE tuner LOGIN PASSWORD '{PASSWORD}'")
        yield server
    finally:
        subprocess.run(
            [*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)
