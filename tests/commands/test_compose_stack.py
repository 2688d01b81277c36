"""The compose stack for real: the project's Dockerfile and docker-compose.yml, unchanged, on
a real Docker engine, run the way README's "docker compose" section says.

PostgreSQL, the one-shot launch, three workers and the dashboard work a tiny nine-point study
on small data (a study folder and an npz given through TUNER_STUDIES_DIR and TUNER_DATA_DIR).
The stack is stopped while every worker is mid-trial and brought up again to finish the grid.
Skipped, with the reason, where no Docker engine runs or can be started (tests/compose.py).
Marker ``compose``: README's ``python -m pytest`` leaves it out, .ci/run runs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.compose import (
    ROOT,
    DockerUnavailableError,
    compose_command,
    docker,
    dotenv,
    ensure_base_images,
    running_engine,
)
from tests.helpers import free_port, synthetic_images
from tuner.study.schema import GRID_ID, HOST, INTERRUPTED

pytestmark = pytest.mark.compose

WORKERS = 3
STUDY = "compose"
GRID = 9
# Slow enough (a trial takes seconds) that a stop lands while every worker is mid-trial.
STUDY_TOML = """
description = "compose test: nine small points"

[model]
batch_norm = false
dropout = 0.0

[grid]
l1 = [16, 24, 32]
l2 = [8, 12, 16]

[protocol]
batch_size = 32
folds = 3
"""
EPOCHS = 40
TRAIN_IMAGES = 3000
BUILD_SECONDS = 2400
STACK_SECONDS = 900
# Settings the compose file reads from the environment: the test's own env file sets them,
# and none may leak in from the shell running the tests.
COMPOSE_SETTINGS = ("POSTGRES_", "TUNER_", "DASHBOARD_", "COMPOSE_", "PG")
DASHBOARD_MEMORY = "1536m"
WORKER_RESTARTS = 3
"""docker-compose.yml's worker policy, on-failure:3: a worker that keeps failing is left."""


def memory_bytes(size: str) -> int:
    """Docker's memory sizes: 512m, 2g, or bytes."""
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    return int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)


@dataclass(frozen=True)
class Trial:
    """One trial row of the study, as the storage holds it."""

    trial_id: int
    state: str
    grid_id: int | None
    host: str | None
    interrupted: bool
    seconds: float
    """How long it ran: until it ended, or until now while it runs."""


@dataclass
class Stack:
    """One compose project of the project's docker-compose.yml, with the test's settings."""

    project: str
    command: list[str]
    environment: dict[str, str]
    settings: dict[str, str]

    def compose(self, *args: str, timeout: float = STACK_SECONDS) -> str:
        done = subprocess.run(
            [*self.command, *args],
            cwd=ROOT,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"{' '.join(args)}: exit {done.returncode}\n{done.stderr}"
        return done.stdout

    def containers(self, service: str) -> list[str]:
        """Ids of the service's containers, running or not."""
        listed = docker(
            "ps",
            "-a",
            "-q",
            "--filter",
            f"label=com.docker.compose.project={self.project}",
            "--filter",
            f"label=com.docker.compose.service={service}",
        )
        return listed.stdout.split()

    def inspect(self, container: str, template: str) -> str:
        return docker("inspect", "-f", template, container).stdout.strip()

    def postgres_ready(self) -> bool:
        (postgres,) = self.containers("postgres")
        user, database = self.settings["POSTGRES_USER"], self.settings["POSTGRES_DB"]
        ready = docker("exec", postgres, "pg_isready", "-U", user, "-d", database, check=False)
        return ready.returncode == 0

    def trials(self) -> list[Trial]:
        """The study's trials, read with psql inside the postgres container."""
        (postgres,) = self.containers("postgres")
        query = f"""
            SELECT t.trial_id, t.state::text, g.value_json, h.value_json, i.value_json,
                EXTRACT(EPOCH FROM COALESCE(t.datetime_complete, now() AT TIME ZONE 'UTC')
                    - t.datetime_start)
            FROM trials t JOIN studies s ON s.study_id = t.study_id
            LEFT JOIN trial_system_attributes g ON g.trial_id = t.trial_id AND g.key = '{GRID_ID}'
            LEFT JOIN trial_user_attributes h ON h.trial_id = t.trial_id AND h.key = '{HOST}'
            LEFT JOIN trial_system_attributes i
                ON i.trial_id = t.trial_id AND i.key = '{INTERRUPTED}'
            WHERE s.study_name = '{STUDY}' ORDER BY t.trial_id
        """
        user, database = self.settings["POSTGRES_USER"], self.settings["POSTGRES_DB"]
        rows = docker(
            "exec", postgres, "psql", "-U", user, "-d", database, "-AtF", "\t", "-c", query
        ).stdout
        trials = []
        for line in rows.splitlines():
            trial_id, state, grid_id, host, interrupted, seconds = line.split("\t")
            trials.append(
                Trial(
                    trial_id=int(trial_id),
                    state=state,
                    grid_id=json.loads(grid_id) if grid_id else None,
                    host=json.loads(host) if host else None,
                    interrupted=bool(interrupted) and json.loads(interrupted) is True,
                    seconds=float(seconds or 0),
                )
            )
        return trials


def wait_until(what: str, condition: Callable[[], bool], timeout: float = STACK_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """A Docker engine with the base images; yields the compose command (or skips)."""
    log_dir = tmp_path_factory.mktemp("dockerd")
    with contextlib.ExitStack() as cleanup:
        try:
            command = compose_command()
            cleanup.enter_context(running_engine(log_dir))
            ensure_base_images()
        except DockerUnavailableError as reason:
            pytest.skip(str(reason))
        yield command


@pytest.fixture
def workspace() -> Iterator[Path]:
    """The study folder and data, readable by the containers' user (uid 1000)."""
    folder = Path(tempfile.mkdtemp(prefix="tuner-compose-"))
    try:
        folder.chmod(0o755)
        (folder / "studies").mkdir(mode=0o755)
        (folder / "studies" / f"{STUDY}.toml").write_text(STUDY_TOML)
        (folder / "data").mkdir(mode=0o755)
        x_train, y_train = synthetic_images(TRAIN_IMAGES, seed=1)
        x_test, y_test = synthetic_images(300, seed=2)
        npz = folder / "data" / f"{STUDY}.npz"
        np.savez(npz, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        for path in folder.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def stack(engine: list[str], workspace: Path) -> Iterator[Stack]:
    """README's setup: .env.example copied and filled in; torn down with down -v at the end."""
    settings = {
        **dotenv(ROOT / ".env.example"),
        # Every character that breaks a URL: compose passes it in PGPASSWORD, not in one.
        "POSTGRES_PASSWORD": f"pw@{secrets.token_hex(16)}:/%40#?x=1&'\"",
        "TUNER_VARIANTS": STUDY,
        "TUNER_DATASET": f"/data/{STUDY}.npz",
        "TUNER_EPOCHS": str(EPOCHS),
        # One point per trial in turn, so a stop finds points done and points mid-trial
        # on every worker (grid packing's whole-batch hand-back: test_scale_out.py).
        "TUNER_TRAINER": "packed",
        "TUNER_STUDIES_DIR": str(workspace / "studies"),
        "TUNER_DATA_DIR": str(workspace / "data"),
        "DASHBOARD_PORT": str(free_port()),
        # One limit other than .env.example's, to see the setting reach the container.
        "DASHBOARD_MEM_LIMIT": DASHBOARD_MEMORY,
    }
    env_file = workspace / ".env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    project = "tunercompose" + secrets.token_hex(4)
    environment = {k: v for k, v in os.environ.items() if not k.startswith(COMPOSE_SETTINGS)}
    command = [*engine, "--project-name", project, "--env-file", str(env_file)]
    stack = Stack(project, command, environment, settings)
    try:
        yield stack
    finally:
        # Shown only when the test failed: what the services said last.
        logs = subprocess.run(
            [*command, "logs", "--no-color", "--tail", "60"],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        print(logs.stdout[-20000:])
        subprocess.run(
            [*command, "down", "-v", "--remove-orphans"],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            timeout=STACK_SECONDS,
            check=False,
        )


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port``, from /proc/net/tcp{,6}."""
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                addresses.add(address)
    return addresses


def refuses(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return False
    except OSError:
        return True


def test_compose_stack_scales_stops_resumes_and_leaves_nothing(stack: Stack) -> None:
    up = ("up", "-d", "--build", "--scale", f"worker={WORKERS}")
    stack.compose(*up, timeout=BUILD_SECONDS)
    workers = stack.containers("worker")
    assert len(workers) == WORKERS
    hosts = {stack.inspect(worker, "{{.Config.Hostname}}") for worker in workers}

    # Every container has its memory limit: .env.example's, or the one set in .env.
    limits = {
        "postgres": stack.settings["POSTGRES_MEM_LIMIT"],
        "launch": stack.settings["TUNER_MEM_LIMIT"],
        "worker": stack.settings["TUNER_MEM_LIMIT"],
        "dashboard": DASHBOARD_MEMORY,
    }
    for service, limit in limits.items():
        for container in stack.containers(service):
            assert stack.inspect(container, "{{.HostConfig.Memory}}") == str(memory_bytes(limit))
    for worker in workers:
        policy = stack.inspect(worker, "{{json .HostConfig.RestartPolicy}}")
        assert json.loads(policy) == {"Name": "on-failure", "MaximumRetryCount": WORKER_RESTARTS}

    # The dashboard: healthy, answering on 127.0.0.1:DASHBOARD_PORT, and on no other address.
    port = int(stack.settings["DASHBOARD_PORT"])
    (dashboard,) = stack.containers("dashboard")
    wait_until(
        "the dashboard is healthy",
        lambda: stack.inspect(dashboard, "{{.State.Health.Status}}") == "healthy",
    )
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=10) as reply:
        assert f'"study_name": "{STUDY}"' in reply.read().decode()
    bindings = json.loads(stack.inspect(dashboard, "{{json .NetworkSettings.Ports}}"))
    assert bindings == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    assert listening_addresses(port) <= {"0100007F"}  # 127.0.0.1, never 0.0.0.0 or [::]
    assert refuses("127.0.0.2", port)  # a wildcard bind would answer here

    # Stop while every worker is well into a trial, after some points completed: the workers
    # start together, so their first points end at about the same moment; a third of the way
    # into the next ones, none is near the end of its trial (or between two trials).
    def mid_trial() -> bool:
        trials = stack.trials()
        done = [t.seconds for t in trials if t.state == "COMPLETE"]
        running = {t.host: t.seconds for t in trials if t.state == "RUNNING"}
        return bool(done) and set(running) == hosts and min(running.values()) > min(done) / 3

    wait_until("every worker is mid-trial after some points completed", mid_trial)
    running_at_stop = {t.trial_id for t in stack.trials() if t.state == "RUNNING"}
    stack.compose("stop")
    assert [stack.inspect(w, "{{.State.ExitCode}}") for w in workers] == ["143"] * WORKERS
    # SIGTERM, not the SIGKILL that ends the grace period (137).
    assert stack.inspect(dashboard, "{{.State.ExitCode}}") == "143"
    stack.compose("start", "postgres")  # only to read what the workers left
    wait_until("PostgreSQL answers again", stack.postgres_ready)
    stopped = stack.trials()
    assert not [t for t in stopped if t.state == "RUNNING"]
    given_back = [t for t in stopped if t.state == "FAIL"]
    assert given_back and all(t.interrupted for t in given_back), given_back
    assert {t.host for t in given_back} <= hosts
    # Each trial running when the stop was sent was given back, unless it completed while
    # `docker-compose stop` reached its worker (then that worker stopped between trials).
    ended = {t.trial_id: t.state for t in stopped if t.trial_id in running_at_stop}
    assert set(ended) == running_at_stop and set(ended.values()) <= {"FAIL", "COMPLETE"}
    done_before = {t.grid_id: t for t in stopped if t.state == "COMPLETE"}
    assert done_before and not {t.grid_id for t in given_back} & set(done_before)

    # Up again: the grid is finished, and no point completed before the stop trains again.
    stack.compose(*up, timeout=BUILD_SECONDS)
    workers = stack.containers("worker")
    assert len(workers) == WORKERS

    def workers_done() -> bool:
        states = [stack.inspect(w, "{{.State.Status}} {{.RestartCount}}") for w in workers]
        assert all(state.split()[1] == "0" for state in states), f"a worker restarted: {states}"
        return all(state.startswith("exited") for state in states)

    wait_until("the workers finish the grid", workers_done)
    assert [stack.inspect(w, "{{.State.ExitCode}}") for w in workers] == ["0"] * WORKERS
    final = stack.trials()
    complete = sorted(t.grid_id for t in final if t.state == "COMPLETE")
    assert complete == list(range(GRID)), final  # every grid point COMPLETE exactly once
    for grid_id, trial in done_before.items():
        assert [t for t in final if t.grid_id == grid_id] == [trial]
    assert not [t for t in final if t.state == "FAIL" and not t.interrupted]

    # No password in anything the services logged.
    logs = stack.compose("logs", "--no-color")
    assert "grid done" in logs
    password = stack.settings["POSTGRES_PASSWORD"]
    assert password not in logs and password.split("@")[1].split(":")[0] not in logs

    # down -v leaves no container, volume or network of the project behind.
    stack.compose("down", "-v")
    label = f"label=com.docker.compose.project={stack.project}"
    assert docker("ps", "-a", "-q", "--filter", label).stdout.split() == []
    volumes = docker("volume", "ls", "-q").stdout.split()
    assert [v for v in volumes if v.startswith(f"{stack.project}_")] == []
    assert docker("volume", "ls", "-q", "--filter", label).stdout.split() == []
    networks = docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert [n for n in networks if n.startswith(f"{stack.project}_")] == []
    assert docker("network", "ls", "-q", "--filter", label).stdout.split() == []


def test_a_worker_that_keeps_failing_is_restarted_only_a_few_times(stack: Stack) -> None:
    """A worker exits 2 when points failed for good, and on every refusal; a bare on-failure
    would restart it for ever. Here every run is refused (no launch: the storage holds no
    study yet): it runs once and is restarted WORKER_RESTARTS times, then left exited."""
    stack.compose("up", "-d", "--build", "postgres", timeout=BUILD_SECONDS)
    wait_until("PostgreSQL answers", stack.postgres_ready)
    stack.compose("up", "-d", "--no-deps", "worker", timeout=BUILD_SECONDS)
    (worker,) = stack.containers("worker")

    def left_exited() -> bool:
        status, restarts = stack.inspect(worker, "{{.State.Status}} {{.RestartCount}}").split()
        assert int(restarts) <= WORKER_RESTARTS, f"restarted {restarts} times"
        return status == "exited" and int(restarts) == WORKER_RESTARTS

    wait_until("the worker has used up its restarts", left_exited)
    assert stack.inspect(worker, "{{.State.ExitCode}}") == "2"
    # One line per run, the same each time, and no password in it.
    logs = stack.compose("logs", "--no-color", "worker")
    refusals = [line for line in logs.splitlines() if "error:" in line]
    assert len(refusals) == WORKER_RESTARTS + 1, logs
    assert all("holds no tuner studies yet" in line for line in refusals), logs
    assert stack.settings["POSTGRES_PASSWORD"] not in logs
