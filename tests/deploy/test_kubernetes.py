"""deploy/kubernetes for real where it can run here: rendered with `kubectl kustomize`, every
object validated against the schemas of a current Kubernetes release (kubernetes-validate),
the policies checked (non-root, limits, no secret in plain env or args, no Service but
ClusterIP, workers that ride out preemption), and then the rendered PostgreSQL, launcher,
three workers and report run under a real Docker engine exactly as the manifests say: image,
command, args, user, read-only root, environment resolved from the rendered Secret and
ConfigMap the way the kubelet does (``$(VAR)`` included).

What the Docker part proves is the manifests' wiring (the containers, their settings and the
storage URL they build reach each other and finish the study once). It cannot prove the
scheduler's side: placement, quotas, podFailurePolicy, volume claims. No cluster runs here
(no container registry to pull from). Marker ``kubernetes``: .ci/run runs it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.compose import (
    ROOT,
    DockerUnavailableError,
    docker,
    ensure_base_images,
    image_exists,
    running_engine,
)

pytestmark = pytest.mark.kubernetes

DEPLOY = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("cpu", "gpu")
VARIANT = "2layer"  # the seed's 9-point grid, on the image's Fashion-MNIST, 1 epoch
GRID = 9
WORKERS = 3
BUILD_SECONDS = 2400
RUN_SECONDS = 900
# The test's own overlay, as a user writes one: the study to run and the image to use.
TEST_OVERLAY = """\
bases:
  - ../cpu
configMapGenerator:
  - name: tuner-config
    behavior: merge
    literals:
      - TUNER_VARIANTS={variant}
      - TUNER_EPOCHS=1
"""


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl not installed (.ci/run installs Debian's kubernetes-client)")
    return found


def render(folder: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [kubectl(), "kustomize", str(folder)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture
def deploy_copy(tmp_path: Path) -> tuple[Path, str]:
    """deploy/kubernetes copied, with the password file a user writes; (folder, password)."""
    folder = tmp_path / "kubernetes"
    shutil.copytree(DEPLOY, folder, ignore=shutil.ignore_patterns("postgres-password"))
    # Characters a URL would need encoded: the password never goes into one.
    password = "pw@:/%#?&" + secrets.token_hex(12)
    (folder / "base" / "postgres-password").write_text(password)
    return folder, password


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def pod_specs(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    specs = {}
    for o in objects:
        if o["kind"] in ("Job", "Deployment", "StatefulSet"):
            specs[f"{o['kind']}/{o['metadata']['name']}"] = o["spec"]["template"]["spec"]
    return specs


def test_the_password_file_is_required_and_never_committed() -> None:
    ignores = (ROOT / ".gitignore").read_text().splitlines()
    assert "deploy/kubernetes/base/postgres-password" in ignores
    inside = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], cwd=ROOT, capture_output=True, check=False
    )
    if inside.returncode == 0:  # and git agrees (a checkout, not an exported tree)
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", "deploy/kubernetes/base/postgres-password"],
            cwd=ROOT,
            check=False,
        )
        assert ignored.returncode == 0, ".gitignore must keep the password file out"
    if not (DEPLOY / "base" / "postgres-password").exists():
        done = subprocess.run(
            [kubectl(), "kustomize", str(DEPLOY / "overlays" / "cpu")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode != 0 and "postgres-password" in done.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_render_valid_objects_that_keep_the_policies(
    overlay: str, deploy_copy: tuple[Path, str]
) -> None:
    import kubernetes_validate

    folder, password = deploy_copy
    objects = render(folder / "overlays" / overlay)
    version = kubernetes_validate.latest_version()
    for o in objects:
        kubernetes_validate.validate(o, version, strict=True)
    # The validator does reject what a current API server rejects.
    broken = json.loads(json.dumps(by_kind(objects, "Job")["tuner-workers"]))
    broken["spec"]["parallelizm"] = 4
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)

    assert {o["kind"] for o in objects} == {
        "ConfigMap",
        "Secret",
        "Service",
        "PersistentVolumeClaim",
        "StatefulSet",
        "Job",
        "Deployment",
    }
    # Only ClusterIP Services: nothing exposed outside the cluster.
    services = by_kind(objects, "Service")
    assert set(services) == {"postgres", "tuner-dashboard"}
    assert {s["spec"].get("type", "ClusterIP") for s in services.values()} == {"ClusterIP"}
    # The Secret holds the password the user wrote, and nothing else does.
    (secret,) = by_kind(objects, "Secret").values()
    assert base64.b64decode(secret["data"]["password"]).decode() == password
    for o in objects:
        if o["kind"] != "Secret":
            assert password not in json.dumps(o), o["metadata"]["name"]

    specs = pod_specs(objects)
    assert set(specs) == {
        "StatefulSet/postgres",
        "Job/tuner-launch",
        "Job/tuner-workers",
        "Job/tuner-report",
        "Deployment/tuner-dashboard",
    }
    for name, spec in specs.items():
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] > 0, name
        for container in spec.get("initContainers", []) + spec["containers"]:
            where = f"{name}/{container['name']}"
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), where
            assert {"cpu", "memory"} <= set(resources["limits"]), where
            # Secrets only by reference: no literal password, no password in args.
            text = json.dumps([container.get("command"), container.get("args")])
            assert "PASSWORD)" not in text and password not in text, where
            for env in container.get("env", []):
                if "PASSWORD" in env["name"]:
                    assert "secretKeyRef" in env["valueFrom"], where
                if "value" in env:
                    assert not re.search(r"://[^$/]*:[^$(][^@]*@", env["value"]), where
    # The storage URL holds no password: libpq reads it from PGPASSWORD, from the Secret.
    worker = specs["Job/tuner-workers"]["containers"][0]
    env = {e["name"]: e for e in worker["env"]}
    storage = env["TUNER_STORAGE"]["value"]
    assert storage.startswith("postgresql+psycopg://$(POSTGRES_USER)@$(TUNER_DB_HOST):"), storage
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "password"

    # Workers: an Indexed Job that rides out preemption, eviction and a SIGTERM (exit 143).
    workers = by_kind(objects, "Job")["tuner-workers"]["spec"]
    assert workers["completionMode"] == "Indexed"
    assert workers["parallelism"] == workers["completions"] >= 1
    assert workers["template"]["spec"]["restartPolicy"] == "Never"
    rules = workers["podFailurePolicy"]["rules"]
    assert {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]} in rules
    assert {
        "action": "Ignore",
        "onExitCodes": {"containerName": "worker", "operator": "In", "values": [143]},
    } in rules
    assert worker["args"][:1] == ["worker"]
    launch = specs["Job/tuner-launch"]["containers"][0]["args"]
    assert launch[0] == "launch" and launch[launch.index("--workers") + 1] == "0"
    report = by_kind(objects, "Job")["tuner-report"]["spec"]
    assert report["suspend"] is True
    gpus = [c["resources"]["limits"].get("nvidia.com/gpu") for c in [worker]]
    if overlay == "gpu":
        assert gpus == [1] and worker["resources"]["requests"]["nvidia.com/gpu"] == 1
        assert worker["image"].endswith(":tensorflow-gpu")
    else:
        assert gpus == [None] and worker["image"].endswith(":tensorflow-cpu")
    # No GPU asked for anywhere but the workers.
    for name, spec in specs.items():
        for container in spec["containers"]:
            if name != "Job/tuner-workers":
                assert "nvidia.com/gpu" not in json.dumps(container["resources"]), name


# ----------------------------------------------------------------------------------------
# The rendered pods under Docker.


def resolve_environment(container: dict[str, Any], objects: list[dict[str, Any]]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom, then env in order,
    each value's $(VAR) expanded against what is defined before it."""
    maps = by_kind(objects, "ConfigMap")
    secrets_ = by_kind(objects, "Secret")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]]["data"])
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = expand(entry["value"], env)
        elif "configMapKeyRef" in entry["valueFrom"]:
            ref = entry["valueFrom"]["configMapKeyRef"]
            env[entry["name"]] = maps[ref["name"]]["data"][ref["key"]]
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[entry["name"]] = base64.b64decode(
                secrets_[ref["name"]]["data"][ref["key"]]
            ).decode()
    return env


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined names replaced, $$ an escaped $, others kept."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
        lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
        text,
    )


class Pods:
    """Runs a rendered pod's containers with docker, on one network, as the manifest says."""

    def __init__(self, objects: list[dict[str, Any]], network: str, work: Path) -> None:
        self.objects, self.network, self.work = objects, network, work
        self.started: list[str] = []
        self.volumes: list[str] = []

    def docker_run(
        self,
        spec: dict[str, Any],
        container: dict[str, Any],
        name: str,
        *,
        alias: str | None = None,
        detach: bool,
        extra_env: dict[str, str] | None = None,
        user: str | None = None,
        claims: dict[str, str] | None = None,
    ) -> str:
        env = {**resolve_environment(container, self.objects), **(extra_env or {})}
        security = {**spec.get("securityContext", {}), **container.get("securityContext", {})}
        args = ["run", "--name", name, "--network", self.network]
        if detach:
            args.append("--detach")
        if alias:
            args += ["--network-alias", alias]
        if spec.get("shareProcessNamespace"):
            args.append("--init")  # the pause container is PID 1, not tuner
        args += ["--user", user or f"{security['runAsUser']}:{security.get('runAsGroup', 0)}"]
        if security.get("readOnlyRootFilesystem"):
            args.append("--read-only")
        if security.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        for capability in security.get("capabilities", {}).get("drop", []):
            args += ["--cap-drop", capability]
        limits = container["resources"]["limits"]
        args += ["--cpus", str(cpus(limits["cpu"])), "--memory", memory(limits["memory"])]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for mount in container.get("volumeMounts", []):
            args += self.mount(volumes.get(mount["name"]), mount, name, claims or {})
        for key in env:
            args += ["--env", key]  # values from the environment, not the command line
        command = [expand(a, env) for a in container.get("command", [])]
        if command:
            args += ["--entrypoint", command[0]]
        args.append(container["image"])
        args += command[1:] + [expand(a, env) for a in container.get("args", [])]
        done = subprocess.run(
            ["docker", *args],
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", **env},
            capture_output=True,
            text=True,
            timeout=RUN_SECONDS,
            check=False,
        )
        self.started.append(name)
        assert done.returncode == 0 or not detach, done.stderr
        return done.stdout

    def mount(
        self, volume: dict[str, Any] | None, mount: dict[str, Any], pod: str, claims: dict
    ) -> list[str]:
        target = mount["mountPath"]
        if volume is None:  # a StatefulSet's volume claim template: a fresh volume
            name = claims.get(mount["name"]) or f"{pod}-{mount['name']}"
            self.volumes.append(name)
            return ["--volume", f"{name}:{target}"]
        if "emptyDir" in volume:
            return ["--tmpfs", f"{target}:exec,mode=1777"]
        if "configMap" in volume:
            data = by_kind(self.objects, "ConfigMap")[volume["configMap"]["name"]]["data"]
            folder = self.work / f"{pod}-{mount['name']}"
            folder.mkdir(mode=0o755)
            for key, text in data.items():
                (folder / key).write_text(text)
                (folder / key).chmod(0o644)
            return ["--volume", f"{folder}:{target}:ro"]
        claim = volume["persistentVolumeClaim"]["claimName"]
        name = claims[claim]
        return ["--volume", f"{name}:{target}"]

    def run_to_end(self, spec: dict[str, Any], pod: str, **options: Any) -> list[tuple[str, int]]:
        """Init containers in order, then the one container: [(name, exit code)]."""
        exits = []
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            name = f"{pod}-{container['name']}"
            self.docker_run(spec, container, name, detach=True, **options)
            code = int(docker("wait", name, timeout=RUN_SECONDS).stdout.strip())
            exits.append((container["name"], code))
            if code != 0:
                break
        return exits

    def logs(self) -> str:
        return "\n".join(
            docker("logs", name, check=False).stdout + docker("logs", name, check=False).stderr
            for name in self.started
        )


def cpus(quantity: str | int) -> float:
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory(quantity: str) -> str:
    units = {"Ki": "k", "Mi": "m", "Gi": "g"}
    return f"{quantity[:-2]}{units[quantity[-2:]]}" if quantity[-2:] in units else quantity


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A Docker engine with the base images and tuner's CPU image built from this tree."""
    log_dir = tmp_path_factory.mktemp("dockerd")
    with contextlib.ExitStack() as cleanup:
        try:
            cleanup.enter_context(running_engine(log_dir))
            ensure_base_images()
        except DockerUnavailableError as reason:
            pytest.skip(str(reason))
        # The image docker-compose.yml builds, under the tag the cpu overlay names.
        docker("build", "-q", "-t", "tuner:tensorflow-cpu", str(ROOT), timeout=BUILD_SECONDS)
        yield


def postgres_user(objects: list[dict[str, Any]]) -> str | None:
    """The user PostgreSQL runs as: the manifest's uid, unless the image is the registry-free
    stand-in (Debian's postgres user has another uid there); None for the manifest's."""
    statefulset = by_kind(objects, "StatefulSet")["postgres"]
    image = statefulset["spec"]["template"]["spec"]["containers"][0]["image"]
    label = docker("image", "inspect", "-f", '{{index .Config.Labels "tuner.standin"}}', image)
    if label.stdout.strip() in ("", "<no value>"):
        return None
    uid = docker("run", "--rm", "--entrypoint", "id", image, "-u", "postgres").stdout.strip()
    gid = docker("run", "--rm", "--entrypoint", "id", image, "-g", "postgres").stdout.strip()
    return f"{uid}:{gid}"


def test_rendered_pods_complete_the_study_once_under_docker(
    engine: None, deploy_copy: tuple[Path, str], tmp_path: Path
) -> None:
    folder, password = deploy_copy
    (folder / "overlays" / "test").mkdir()
    (folder / "overlays" / "test" / "kustomization.yaml").write_text(
        TEST_OVERLAY.format(variant=VARIANT)
    )
    objects = render(folder / "overlays" / "test")
    assert image_exists("tuner:tensorflow-cpu")
    specs = pod_specs(objects)
    run_id = "tunerk8s" + secrets.token_hex(4)
    network = run_id
    docker("network", "create", network)
    work = tmp_path / "pods"
    work.mkdir()
    pods = Pods(objects, network, work)
    artifacts = f"{run_id}-artifacts"
    docker("volume", "create", artifacts)
    pods.volumes.append(artifacts)
    # The volume claim, like a fresh PersistentVolume with fsGroup 1000: writable by the pods.
    chown = ["--entrypoint", "chown", "tuner:tensorflow-cpu", "1000:1000", "/a"]
    docker("run", "--rm", "--user", "0", "-v", f"{artifacts}:/a", *chown)
    try:
        db = specs["StatefulSet/postgres"]
        pods.docker_run(
            db,
            db["containers"][0],
            f"{run_id}-postgres-0",
            alias="postgres",
            detach=True,
            user=postgres_user(objects),
        )

        def trials() -> list[tuple[str, int | None]]:
            env = resolve_environment(db["containers"][0], objects)
            query = (
                "SELECT t.state::text, g.value_json FROM trials t"
                " LEFT JOIN trial_system_attributes g"
                " ON g.trial_id = t.trial_id AND g.key = 'grid_id' ORDER BY t.trial_id"
            )
            psql = ["psql", "-U", env["POSTGRES_USER"], "-d", env["POSTGRES_DB"], "-AtF", "\t"]
            rows = docker("exec", f"{run_id}-postgres-0", *psql, "-c", query).stdout
            return [
                (state, json.loads(grid) if grid else None)
                for state, grid in (line.split("\t") for line in rows.splitlines())
            ]

        # The launcher: its init container waits for PostgreSQL, then it creates the study.
        launch = pods.run_to_end(specs["Job/tuner-launch"], f"{run_id}-launch")
        assert launch == [("wait-for-database", 0), ("launch", 0)], pods.logs()[-5000:]
        assert trials() == []

        # Three pods of the Indexed Job, as `parallelism: 3` would start them.
        spec = specs["Job/tuner-workers"]
        names = []
        for index in range(WORKERS):
            pod = f"{run_id}-workers-{index}"
            extra = {"JOB_COMPLETION_INDEX": str(index)}
            init = spec["initContainers"][0]
            pods.docker_run(spec, init, f"{pod}-init", detach=True, extra_env=extra)
            assert docker("wait", f"{pod}-init", timeout=RUN_SECONDS).stdout.strip() == "0"
            pods.docker_run(spec, spec["containers"][0], pod, detach=True, extra_env=extra)
            names.append(pod)
        deadline = time.monotonic() + RUN_SECONDS
        codes = [docker("wait", n, timeout=max(1, deadline - time.monotonic())) for n in names]
        assert [c.stdout.strip() for c in codes] == ["0"] * WORKERS, pods.logs()[-8000:]
        final = trials()
        complete = sorted(g for state, g in final if state == "COMPLETE")
        assert complete == list(range(GRID)), final  # every grid point COMPLETE exactly once
        assert not [t for t in final if t[0] != "COMPLETE"], final

        # The report Job, once the workers are done (README: unsuspend it).
        report = pods.run_to_end(
            specs["Job/tuner-report"],
            f"{run_id}-report",
            claims={"tuner-artifacts": artifacts},
        )
        assert report == [("wait-for-database", 0), ("report", 0)], pods.logs()[-5000:]
        ls = ["--entrypoint", "ls", "tuner:tensorflow-cpu", "/a/reports"]
        listed = docker("run", "--rm", "-v", f"{artifacts}:/a", *ls).stdout.split()
        assert {"report.html", "comparison.csv"} <= set(listed), listed

        logs = pods.logs()
        assert "grid done" in logs
        assert password not in logs
        # No password in any container's command line.
        for name in pods.started:
            argv = docker("inspect", "-f", "{{json .Path}} {{json .Args}}", name).stdout
            assert password not in argv, name
    finally:
        for name in pods.started:
            docker("rm", "-f", name, check=False)
        for volume in pods.volumes:
            docker("volume", "rm", "-f", volume, check=False)
        docker("network", "rm", network, check=False)
