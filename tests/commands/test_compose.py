"""docker-compose.yml and the Dockerfile: parsed and checked here (no Docker engine on CI),
and the exact commands the containers run are run as real processes on a real PostgreSQL."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

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
# Every character that breaks a URL's authority or leaks into its host (@ : / % # ?), and
# quotes and shell separators besides. No $: compose's .env reader expands ${...} (.env.example
# says to single-quote such a password).
HOSTILE_PASSWORD = "p@ss:w/rd%40#frag?x=1&y=;'\"@h:1/"


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
    assert worker["build"]["context"] == "."
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
    assert "${POSTGRES_PASSWORD:?" in compose_text  # refuses to start without one
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "PASSWORD" not in dockerfile and "postgresql" not in dockerfile
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    for name in ("launch", "worker", "dashboard"):
        with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
            interpolate(SERVICES[name]["environment"]["PGPASSWORD"], {})
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        interpolate(SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"], {})


def rendered_environment(service: str, env: dict[str, str]) -> dict[str, str]:
    return {k: interpolate(str(v), env) for k, v in SERVICES[service]["environment"].items()}


def test_the_password_never_goes_into_a_url() -> None:
    # Compose cannot URL-encode: a password in TUNER_STORAGE breaks the URL or sends part of
    # it to DNS as the host. It travels alone, in PGPASSWORD (libpq reads it), exactly.
    env = {**dotenv(ROOT / ".env.example"), "POSTGRES_PASSWORD": HOSTILE_PASSWORD}
    for name in ("launch", "worker", "dashboard"):
        rendered = rendered_environment(name, env)
        assert rendered["PGPASSWORD"] == HOSTILE_PASSWORD
        assert rendered["TUNER_STORAGE"] == "postgresql+psycopg://tuner@postgres:5432/tuner"
        other = rendered_environment(name, {**env, "POSTGRES_PASSWORD": "other"})
        assert other["TUNER_STORAGE"] == rendered["TUNER_STORAGE"]
    postgres = rendered_environment("postgres", env)
    assert postgres["POSTGRES_PASSWORD"] == HOSTILE_PASSWORD


def compose_cli() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("docker-compose is not installed (.ci/run installs Debian's)")


def compose_config(env_file: Path, *files: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` (no engine needed) with only ``env_file``'s settings."""
    options = [arg for name in files for arg in ("-f", name)]
    return subprocess.run(
        [*compose_cli(), *options, "--env-file", str(env_file), "config"],
        cwd=ROOT,
        env={
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("POSTGRES_", "TUNER_", "DASHBOARD_", "COMPOSE_"))
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_compose_passes_a_hostile_password_through_unchanged(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    text = (ROOT / ".env.example").read_text()
    env_file.write_text(
        text.replace("POSTGRES_PASSWORD=\n", f"POSTGRES_PASSWORD={HOSTILE_PASSWORD}\n")
    )
    done = compose_config(env_file)
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == HOSTILE_PASSWORD
    for name in ("launch", "worker", "dashboard"):
        environment = services[name]["environment"]
        assert environment["PGPASSWORD"] == HOSTILE_PASSWORD
        assert environment["TUNER_STORAGE"] == "postgresql+psycopg://tuner@postgres:5432/tuner"


def test_an_unedited_env_example_is_refused_in_one_line(tmp_path: Path) -> None:
    # The placeholder is an empty password: compose's own ${POSTGRES_PASSWORD:?...} refuses
    # it before any container runs or any volume is initialised with it.
    assert dotenv(ROOT / ".env.example")["POSTGRES_PASSWORD"] == ""
    for name in ("launch", "worker", "dashboard"):
        with pytest.raises(KeyError, match=r"set POSTGRES_PASSWORD in \.env"):
            rendered_environment(name, dotenv(ROOT / ".env.example"))
    env_file = tmp_path / ".env"
    env_file.write_text((ROOT / ".env.example").read_text())
    for files in ((), ("docker-compose.yml", "docker-compose.gpu.yml")):
        done = compose_config(env_file, *files)
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "set POSTGRES_PASSWORD in .env" in lines[0], done.stderr


def bytes_of(size: str) -> int:
    """Docker's memory sizes: 512m, 2g, 1536k, or bytes."""
    number, unit = re.fullmatch(r"(\d+)([bkmg]?)", size.lower()).groups()  # type: ignore[union-attr]
    return int(number) * 1024 ** "bkmg".index(unit or "b")


def test_every_container_has_a_memory_limit_set_from_env() -> None:
    example = dotenv(ROOT / ".env.example")
    settings = {
        "postgres": "POSTGRES_MEM_LIMIT",
        "launch": "TUNER_MEM_LIMIT",
        "worker": "TUNER_MEM_LIMIT",
        "dashboard": "DASHBOARD_MEM_LIMIT",
    }
    for name, setting in settings.items():
        limit = SERVICES[name]["mem_limit"]
        default = interpolate(limit, {})
        # The compose default and .env.example agree, and both are sane: 1 to 64 GiB.
        assert default == example[setting]
        assert 2**30 <= bytes_of(default) <= 64 * 2**30
        assert interpolate(limit, {setting: "3g"}) == "3g"


def test_worker_restarts_are_bounded_and_a_stop_is_final() -> None:
    # A worker exits 2 when points failed for good, and on every refusal: a bare on-failure
    # would restart it for ever. A bounded count still retries a crash (an OOM kill, 137).
    policy = SERVICES["worker"]["restart"]
    match = re.fullmatch(r"on-failure:(\d+)", policy)
    assert match and 1 <= int(match.group(1)) <= 5, policy
    # The dashboard and PostgreSQL stay up (a `docker-compose stop` is final for them too),
    # the one-shot launch never restarts.
    assert SERVICES["launch"]["restart"] == "no"
    assert SERVICES["postgres"]["restart"] == SERVICES["dashboard"]["restart"] == "unless-stopped"


def test_compose_files_are_valid(tmp_path: Path) -> None:
    # docker-compose validates against its Compose Specification schema, then resolves
    # anchors, merges and interpolation: what .ci/run's static check runs.
    env_file = tmp_path / ".env"
    text = (ROOT / ".env.example").read_text()
    env_file.write_text(text.replace("POSTGRES_PASSWORD=\n", "POSTGRES_PASSWORD=x\n"))
    for files in ((), ("docker-compose.yml", "docker-compose.gpu.yml")):
        done = compose_config(env_file, *files)
        assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_dockerfile_passes_hadolint() -> None:
    # hadolint from its PyPI wheel (the dev extras); ignored rules are justified inline.
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install -e '.[dev]' installs it)")
    done = subprocess.run(
        [hadolint, "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_runs_tuner_as_a_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'pip install ".[${extras}]"' in dockerfile
    assert 'ENTRYPOINT ["tuner"]' in dockerfile
    # Numeric, so that a runtime can tell it is not root without the image's /etc/passwd.
    assert "useradd --create-home --uid 1000 --gid 1000 tuner" in dockerfile
    assert re.search(r"^USER 1000(:1000)?$", dockerfile, re.MULTILINE)
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
    postgres_server, studies_dir: Path, synthetic_npz: Path, tmp_path: Path
) -> None:
    # A role and database as the postgres service creates them, with a password holding
    # every character that breaks a URL: the containers' environment, as compose renders
    # it, must reach them.
    role, database = f"compose_{uuid.uuid4().hex[:8]}", f"compose_{uuid.uuid4().hex[:8]}"
    quoted = HOSTILE_PASSWORD.replace("'", "''")
    postgres_server.psql(f"CREATE ROLE {role} LOGIN PASSWORD '{quoted}'")
    postgres_server.psql(f"CREATE DATABASE {database} OWNER {role}")
    env = {
        **dotenv(ROOT / ".env.example"),
        "POSTGRES_USER": role,
        "POSTGRES_PASSWORD": HOSTILE_PASSWORD,
        "POSTGRES_DB": database,
        "TUNER_VARIANTS": "tiny",
        "TUNER_DATASET": str(synthetic_npz),
        "TUNER_EPOCHS": "1",
    }
    rendered = rendered_environment("worker", env)
    assert "@postgres:5432/" in rendered["TUNER_STORAGE"]
    # The test server stands in for the postgres service.
    storage = rendered["TUNER_STORAGE"].replace(
        "@postgres:5432/", f"@127.0.0.1:{postgres_server.port}/"
    )
    process_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TUNER_", "PG"))},
        # What compose and the image set.
        "TUNER_STORAGE": storage,
        "PGPASSWORD": rendered["PGPASSWORD"],
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
    for done in (launched, worked):
        assert HOSTILE_PASSWORD not in done.stdout + done.stderr
    # Read back here with the password URL-encoded, as a user would write it.
    encoded = storage.replace(f"{role}@", f"{role}:{quote(HOSTILE_PASSWORD, safe='')}@")
    study = optuna.load_study(study_name="tiny", storage=encoded)
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 3

    argv = container_argv("dashboard", env)
    port = free_port()
    argv[argv.index("--port") + 1] = str(port)
    argv[argv.index("--host") + 1] = "127.0.0.1"  # 0.0.0.0 is only inside the container
    with serving_dashboard(argv, cwd=tmp_path, env=process_env) as base:
        assert '"study_name": "tiny"' in fetch(f"{base}/api/studies")
