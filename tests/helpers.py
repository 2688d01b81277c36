"""Helpers the tests share: synthetic data, a tiny study, and the real `tuner` command.

Child processes always start with SIGINT at its default: pytest itself may run with
SIGINT ignored (nohup, a background job of a non-interactive shell, some CI runners),
and a child inheriting that would ignore the very interrupt a test sends it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

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


def free_port() -> int:
    """A TCP port nobody listens on right now, on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def tuner_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without TUNER_* settings, plus ``env``."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")}
    return {**inherited, "PYTHONUNBUFFERED": "1", **(env or {})}


def run_tuner(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real `tuner` command in a subprocess, as a user would, to its end
    (``input_text``: what the user types at its prompts)."""
    return subprocess.run(
        [sys.executable, "-m", "tuner", *args],
        cwd=cwd,
        env=tuner_environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input_text,
        preexec_fn=_default_sigint,
    )


def start_tuner(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start `tuner` in the background, its output captured (prefer the fixture
    ``tuner_processes``, which also kills it if the test fails midway)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tuner", *args],
        cwd=cwd,
        env=tuner_environment(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


@contextmanager
def started_tuner(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """`tuner` in the background for a ``with`` block; killed on the way out if still running."""
    process = start_tuner(*args, cwd=cwd, env=env)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def wait_for(predicate: Callable[[], bool], timeout: float = 240.0) -> None:
    """Poll until ``predicate()`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError("condition not reached in time")


def fetch(url: str) -> str:
    with urllib.request.urlopen(url) as reply:
        return reply.read().decode()


@contextmanager
def serving_dashboard(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run `tuner dashboard ...` until it answers; yields its base URL, then stops it."""
    port = argv[argv.index("--port") + 1]
    with started_tuner(*argv, cwd=cwd, env=env) as server:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                fetch(f"{base}/api/studies")
                break
            except OSError:
                if server.poll() is not None:
                    raise AssertionError(f"dashboard exited: {server.communicate()}") from None
                time.sleep(0.5)
        yield base
        server.terminate()


def make_study(url: str, studies_dir: Path, name: str = "tiny", **protocol: object) -> None:
    """Create the tiny study (its protocol changed by ``protocol``) in ``url``, trained on
    nothing yet: what the tests of refusals, status and deletion start from."""
    import dataclasses

    from tuner.data import DatasetSpec
    from tuner.storages import open_storage
    from tuner.study import StudyConfig, create_or_resume, load_definition

    definition = load_definition(studies_dir / "tiny.toml")
    if protocol:
        definition = dataclasses.replace(
            definition, protocol=dataclasses.replace(definition.protocol, **protocol)
        )
    config = StudyConfig(name, definition, DatasetSpec("mnist"), "fingerprint", 2)
    create_or_resume(open_storage(url), config)
