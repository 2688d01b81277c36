"""docker-compose.yml and the Dockerfile: parsed and checked here (no Docker engine on CI),
and the exact commands the containers run are run as real processes on a real PostgreSQL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tests.compose import dotenv
from tests.helpers import fetch, free_port, serving_dashboard

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
SUBCOMMANDS = {"launch", "worker", "status", "dashboard", "variants", "report"}


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}; $$ is a literal $."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        value = env.get(name, "")
        if op == ":?" and not value:
            raise KeyError(f"{name}: {arg}")
        return value or (arg if op == ":-" else "")

    text = text.replace("$$", "\0")
    text = re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, text)
    return text.replace("\0", "$")


def test_services_and_their_wiring() -> None:
    assert set(SERVICES) == {"postgres", "launch", "worker", "dashboard"}
    postgres = SERVICES["postgres"]
    assert postgres["image"].startswith("postgres:15")
    assert any(v.startswith("pgdata:") for v in postgres["volumes"])
    assert "pgdata" in COMPOSE["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])

    worker = SERVICES["worker"]
    assert worker["build"]["context"] == "." and worker["restart"] == "on-failure"
    assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert worker["depends_on"]["launch"]["condition"] == "service_completed_successfully"
    # CPU by default: the base file runs on a host without GPUs, unedited.
    assert "deploy" not in worker
    assert "container_name" not in worker  # would forbid --scale worker=N
    assert not worker.get("ports")  # scaled workers must not fight over a host port

    assert SERVICES["launch"]["restart"] == "no"
    assert "--workers" in SERVICES["launch"]["command"]
    for name in ("launch", "worker", "dashboard"):
        assert SERVICES[name]["command"][0] in SUBCOMMANDS
        assert "TUNER_STORAGE" in SERVICES[name]["environment"]


def test_gpu_override_shares_the_cards_between_scaled_workers() -> None:
    override = yaml.safe_load((ROOT / "docker-compose.gpu.yml").read_text())
    worker = override["services"]["worker"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    # "all", not a count: --scale worker=N must not demand N GPUs.
    assert device["count"] == "all"
    assert worker["build"]["args"]["DEVICE"] == "gpu"


def test_backend_and_device_are_build_arguments() -> None:
    args = SERVICES["worker"]["build"]["args"]
    assert interpolate(args["BACKEND"], {}) == "tensorflow"
    assert interpolate(args["BACKEND"], {"TUNER_BACKEND": "jax"}) == "jax"
    assert interpolate(args["DEVICE"], {}) == "cpu"
    environment = SERVICES["worker"]["environment"]
    assert interpolate(environment["KERAS_BACKEND"], {"TUNER_BACKEND": "jax"}) == "jax"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG BACKEND=tensorflow" in dockerfile and "ARG DEVICE=cpu" in dockerfile
    assert "KERAS_BACKEND=${BACKEND}" in dockerfile
    extras = re.findall(r"(\w+-\w+)\) extras=([\w,-]+)", dockerfile)
    assert dict(extras) == {
        "tensorflow-cpu": "postgres,mysql",
        "tensorflow-gpu": "postgres,mysql,gpu",
        "jax-cpu": "postgres,mysql,jax",
        "jax-gpu": "postgres,mysql,jax-gpu",
    }


def test_dashboard_is_published_on_loopback_only() -> None:
    ports = SERVICES["dashboard"]["ports"]
    assert ports and all(str(port).startswith("127.0.0.1:") for port in ports)


def test_no_credentials_are_baked_in() -> None:
    compose_text = (ROOT / "docker-compose.yml").read_text()
    example = dotenv(ROOT / ".env.example")
    assert example["POSTGRES_PASSWORD"]
    assert example["POSTGRES_PASSWORD"] not in compose_text
    assert "${POSTGRES_PASSWORD:?" in compose_text  # refuses to start without one
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "PASSWORD" not in dockerfile and "postgresql" not in dockerfile
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        interpolate(SERVICES["worker"]["environment"]["TUNER_STORAGE"], {})


def test_dockerfile_runs_tuner_as_a_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'pip install ".[${extras}]"' in dockerfile
    assert 'ENTRYPOINT ["tuner"]' in dockerfile
    assert "USER tuner" in dockerfile
    assert "dataset-fashion-mnist" in dockerfile
    assert "tensorflow[and-cuda]" in (ROOT / "pyproject.toml").read_text()


def test_health_checks_only_where_they_mean_something() -> None:
    # One image, three roles: a HEALTHCHECK in it would probe a port workers don't serve.
    assert not re.search(r"^HEALTHCHECK", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    dashboard = SERVICES["dashboard"]
    port = dashboard["command"][dashboard["command"].index("--port") + 1]
    assert f"127.0.0.1:{port}/api/" in " ".join(dashboard["healthcheck"]["test"])
    assert "healthcheck" not in SERVICES["worker"] and "healthcheck" not in SERVICES["launch"]


def test_stop_signals_reach_tuner_through_an_init() -> None:
    # PID 1 ignores signals it has no handler for: the dashboard would wait out the grace
    # period and be killed instead of stopping.
    for name in ("launch", "worker", "dashboard"):
        assert SERVICES[name]["init"] is True


def test_own_studies_and_data_are_mounted_read_only() -> None:
    volumes = SERVICES["worker"]["volumes"]
    studies = next(v for v in volumes if ":/app/studies:" in v)
    data = next(v for v in volumes if ":/data:" in v)
    assert studies.endswith(":ro") and data.endswith(":ro")
    assert interpolate(studies, {}) == "./tuner/studies:/app/studies:ro"
    assert interpolate(studies, {"TUNER_STUDIES_DIR": "/s"}) == "/s:/app/studies:ro"
    assert interpolate(data, {}) == "data:/data:ro" and "data" in COMPOSE["volumes"]
    assert interpolate(data, {"TUNER_DATA_DIR": "./mine"}) == "./mine:/data:ro"
    # The image has the built-in definitions as package data; compose points tuner at
    # the mounted folder.
    assert SERVICES["worker"]["environment"]["TUNER_STUDIES"] == "/app/studies"


def test_build_context_lets_in_only_what_the_image_copies() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"  # an allowlist: .env, .git and databases never reach the daemon
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = re.findall(r"^COPY (\S+) ", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert allowed == set(copied) == {"pyproject.toml", "README.md", "tuner"}


def container_argv(service: str, env: dict[str, str]) -> list[str]:
    return [interpolate(part, env) for part in SERVICES[service]["command"]]


def test_container_commands_run_against_real_postgres(
    postgres_url: str, studies_dir: Path, synthetic_npz: Path, tmp_path: Path
) -> None:
    env = {
        **dotenv(ROOT / ".env.example"),
        "TUNER_VARIANTS": "tiny",
        "TUNER_DATASET": str(synthetic_npz),
        "TUNER_EPOCHS": "1",
    }
    process_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TUNER_")},
        # What the image sets, with the test server standing in for the postgres service.
        "TUNER_STORAGE": postgres_url,
        "TUNER_STUDIES": str(studies_dir),
        "TUNER_ARTIFACTS": str(tmp_path / "artifacts"),
    }

    def tuner(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tuner", *argv],
            env=process_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            **kwargs,
        )

    launched = tuner(container_argv("launch", env), timeout=300)
    assert launched.returncode == 0, launched.stderr
    worked = tuner(container_argv("worker", env), timeout=300)
    assert worked.returncode == 0, worked.stderr
    assert "grid done: 3/3 complete" in worked.stdout
    study = optuna.load_study(study_name="tiny", storage=postgres_url)
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 3

    argv = container_argv("dashboard", env)
    port = free_port()
    argv[argv.index("--port") + 1] = str(port)
    argv[argv.index("--host") + 1] = "127.0.0.1"  # 0.0.0.0 is only inside the container
    with serving_dashboard(argv, cwd=tmp_path, env=process_env) as base:
        assert '"study_name": "tiny"' in fetch(f"{base}/api/studies")
