"""Shared fixtures: small learnable synthetic data, a tiny study folder, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

TINY_STUDY = """
description = "tiny test variant"

[model]
batch_norm = true
dropout = 0.2

[grid]
l1 = [8, 16, 32]
l2 = [8]

[protocol]
epochs = 2
batch_size = 32
folds = 3
"""


def synthetic_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped uint8 images whose class is written as a bright band: easy to learn."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for label in range(10):
        images[labels == label, 2 * label : 2 * label + 3, :] = 250
    return images, labels


@pytest.fixture
def synthetic_npz(tmp_path: Path) -> Path:
    x_train, y_train = synthetic_images(300, seed=1)
    x_test, y_test = synthetic_images(100, seed=2)
    path = tmp_path / "synthetic.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture
def studies_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "tiny.toml").write_text(TINY_STUDY)
    return folder


def run_tuner(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real `tuner` command in a subprocess, as a user would."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")}
    environment = {**inherited, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tuner", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


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


def fetch(url: str) -> str:
    with urllib.request.urlopen(url) as reply:
        return reply.read().decode()


@contextmanager
def serving_dashboard(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run `tuner dashboard ...` until it answers; yields its base URL, then stops it."""
    port = argv[argv.index("--port") + 1]
    server = subprocess.Popen(
        [sys.executable, "-m", "tuner", *argv], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                fetch(f"{base}/api/studies")
                break
            except OSError:
                if server.poll() is not None:
                    raise AssertionError(f"dashboard exited: {server.communicate()}") from None
                time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        server.communicate(timeout=30)
