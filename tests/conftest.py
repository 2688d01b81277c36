"""Shared fixtures: small learnable synthetic data, a tiny study folder, real servers."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import TINY_STUDY, start_tuner, synthetic_images


def pytest_configure(config: pytest.Config) -> None:
    """Tests that train on JAX (and the workers they start) share a throwaway compile
    cache rather than filling the user's own ``~/.cache/tuner/xla``."""
    if "TUNER_COMPILE_CACHE" not in os.environ:
        os.environ["TUNER_COMPILE_CACHE"] = tempfile.mkdtemp(prefix="tuner-test-xla-")


@pytest.fixture
def synthetic_npz(tmp_path: Path) -> Path:
    x_train, y_train = synthetic_images(300, seed=1)
    x_test, y_test = synthetic_images(100, seed=2)
    path = tmp_path / "synthetic.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture
def wine_csv(tmp_path: Path) -> Path:
    """scikit-learn's bundled wine table as a user's CSV: 178 rows, 13 numeric columns and
    a text target of three named classes."""
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    path = tmp_path / "wine.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def studies_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "tiny.toml").write_text(TINY_STUDY)
    return folder


@pytest.fixture(scope="session")
def postgres_server():
    from tests import postgres

    if not postgres.available():
        pytest.skip("PostgreSQL 15 server binaries not installed (.ci/run installs them)")
    with postgres.running_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server) -> str:
    return postgres_server.new_database()


@pytest.fixture
def tuner_processes() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start real `tuner` processes in the background; any still running at the end is killed.

    Call it like :func:`tests.helpers.start_tuner`: ``tuner_processes(*args, cwd=..., env=...)``.
    """
    started: list[subprocess.Popen[str]] = []

    def start(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        process = start_tuner(*args, cwd=cwd, env=env)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
            process.communicate()


@pytest.fixture(scope="session")
def mysql_server():
    """A throw-away MariaDB server for the session; skips where MariaDB is not installed."""
    from tests import mysql

    reason = mysql.missing()
    if reason is not None:
        pytest.skip(reason)
    with mysql.running_server() as server:
        yield server


@pytest.fixture
def mysql_url(mysql_server) -> str:
    """A fresh MariaDB database owned by the password-protected user ``tuner``: its URL."""
    return mysql_server.new_database()
