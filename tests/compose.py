"""A real Docker engine and docker-compose for the compose tests (never a mock).

:func:`running_engine` uses the engine that answers, else starts Debian's ``dockerd`` (as
root) and stops it afterwards, putting back what it changed on the host (firewall, IP
forwarding, its bridge). :func:`ensure_base_images` makes the Dockerfile's and the compose
file's base images exist: already there, else pulled, else stand-ins built from Debian
packages under the same tags (``tests/docker/``), so the project's own Dockerfile and
docker-compose.yml run unchanged on a machine that reaches no container registry. Images
are kept in the engine between runs: a warm run builds nothing it already has.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STANDINS = ROOT / "tests" / "docker"
PYTHON_BASE = "python:3.11-slim-bookworm"
POSTGRES_BASE = "postgres:15"
BOOKWORM = "tuner-standin/bookworm:minbase"
"""The debootstrapped bookworm both stand-ins are built on (a local tag only)."""
RECIPE_LABEL = "tuner.standin"
"""Label on every stand-in: a digest of its recipe, so a changed recipe is rebuilt."""

MIRROR = "http://deb.debian.org/debian"
ENGINE_START_SECONDS = 60
PULL_SECONDS = 300
BUILD_SECONDS = 1800

# As in Debian's own container images: no documentation, manuals or translations, and no
# apt caches or package lists left in any layer.
DPKG_SLIM = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
"""
APT_CLEAN = """\
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
"""  # noqa: E501
SOURCES = f"""\
deb {MIRROR} bookworm main
deb {MIRROR} bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
"""


class DockerUnavailableError(Exception):
    """Docker cannot be used here; the message is the one-line reason a test skips with."""


def docker(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the ``docker`` client; its output is captured as text."""
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: exit {done.returncode}: {done.stderr}")
    return done


def _engine_answers() -> bool:
    try:
        return docker("info", timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def compose_command() -> list[str]:
    """README's ``docker-compose`` (Debian's package), else Docker's ``docker compose``."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    raise DockerUnavailableError("neither docker-compose nor `docker compose` is installed")


def _host_state() -> tuple[str | None, str | None, bool]:
    """The firewall rules, IP forwarding and whether docker0 exists, before dockerd."""
    rules = None
    if shutil.which("iptables-save"):
        saved = subprocess.run(["iptables-save"], capture_output=True, text=True, check=False)
        rules = saved.stdout if saved.returncode == 0 else None
    forwarding = None
    with contextlib.suppress(OSError):
        forwarding = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    return rules, forwarding, Path("/sys/class/net/docker0").exists()


def _restore_host_state(rules: str | None, forwarding: str | None, had_bridge: bool) -> None:
    """Undo what dockerd leaves behind when it stops (its chains, a FORWARD policy of
    DROP, IP forwarding on, the docker0 bridge), so the machine is as the test found it."""
    if rules is not None:
        subprocess.run(["iptables-restore"], input=rules, text=True, check=False)
    if forwarding is not None:
        with contextlib.suppress(OSError):
            Path("/proc/sys/net/ipv4/ip_forward").write_text(forwarding)
    if not had_bridge and Path("/sys/class/net/docker0").exists():
        subprocess.run(["ip", "link", "delete", "docker0"], capture_output=True, check=False)


@contextmanager
def running_engine(log_dir: Path) -> Iterator[bool]:
    """A Docker engine for the block; yields whether this call started it.

    The running one if ``docker info`` answers; else Debian's ``dockerd`` with its
    defaults (storage driver chosen by the engine, its data in /var/lib/docker so built
    images outlive the run), stopped by its pid at the end, after removing the dangling
    images the run left (an image replaced by a rebuild). Raises
    :class:`DockerUnavailableError` with the reason where neither is possible.
    """
    if not shutil.which("docker"):
        raise DockerUnavailableError("no docker client (.ci/run installs Debian's docker.io)")
    if _engine_answers():
        yield False
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise DockerUnavailableError("no Docker engine runs and dockerd is not installed")
    if os.geteuid() != 0:
        raise DockerUnavailableError("no Docker engine runs and starting dockerd needs root")
    log_path = log_dir / "dockerd.log"
    host_state = _host_state()
    with log_path.open("w") as log:
        engine = subprocess.Popen(
            [dockerd, "--pidfile", str(log_dir / "dockerd.pid")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + ENGINE_START_SECONDS
        while not _engine_answers():
            if engine.poll() is not None or time.monotonic() > deadline:
                lines = log_path.read_text(errors="replace").strip().splitlines()
                last = lines[-1] if lines else "no output"
                raise DockerUnavailableError(f"dockerd could not start here: {last}")
            time.sleep(0.5)
        yield True
    finally:
        if engine.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                docker("image", "prune", "--force", timeout=300, check=False)
            engine.send_signal(signal.SIGTERM)
            try:
                engine.wait(timeout=60)
            except subprocess.TimeoutExpired:
                engine.kill()
                engine.wait()
        _restore_host_state(*host_state)


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag, check=False).returncode == 0


def _pulled(tag: str) -> bool:
    try:
        return docker("pull", "-q", tag, timeout=PULL_SECONDS, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _unmount_below(path: Path) -> bool:
    """Unmount anything a failed debootstrap left mounted inside ``path``; True if clear."""
    prefix = str(path.resolve()) + "/"
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    return not any(m.startswith(prefix) for m in mounts)


def _bookworm_recipe() -> str:
    recipe = "\0".join((MIRROR, DPKG_SLIM, APT_CLEAN, SOURCES))
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def _import_bookworm() -> None:
    """debootstrap a minimal bookworm, slim it like Debian's container images, import it."""
    if not shutil.which("debootstrap"):
        raise DockerUnavailableError(
            f"{PYTHON_BASE} and {POSTGRES_BASE} cannot be pulled and debootstrap, which "
            "builds their stand-ins, is not installed"
        )
    work = Path(tempfile.mkdtemp(prefix="tuner-bookworm-"))
    rootfs = work / "rootfs"
    try:
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), MIRROR],
            capture_output=True,
            text=True,
            timeout=BUILD_SECONDS,
            check=True,
        )
        (rootfs / "etc/dpkg/dpkg.cfg.d/docker-slim").write_text(DPKG_SLIM)
        (rootfs / "etc/apt/apt.conf.d/docker-clean").write_text(APT_CLEAN)
        (rootfs / "etc/apt/sources.list").write_text(SOURCES)
        for folder in ("usr/share/man", "usr/share/info", "usr/share/locale", "var/cache/apt"):
            shutil.rmtree(rootfs / folder, ignore_errors=True)
            (rootfs / folder).mkdir()
        shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
        (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)
        for path in (rootfs / "usr/share/doc").rglob("*"):
            if path.is_file() and path.name != "copyright":
                path.unlink()
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE
        )
        subprocess.run(
            [
                "docker",
                "import",
                "--change",
                'CMD ["bash"]',
                "--change",
                f"LABEL {RECIPE_LABEL}={_bookworm_recipe()}",
                "-",
                BOOKWORM,
            ],
            stdin=tar.stdout,
            capture_output=True,
            timeout=BUILD_SECONDS,
            check=True,
        )
        tar.wait()
    finally:
        if _unmount_below(work):
            shutil.rmtree(work, ignore_errors=True)


_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)


def extra_certificate_authorities() -> list[str]:
    """The PEM certificates this machine's trust store holds beyond Debian's packaged ones
    (a TLS-inspecting proxy's, say): the stand-ins must reach PyPI as the machine does."""
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    packaged = Path("/usr/share/ca-certificates")
    if not bundle.is_file() or not packaged.is_dir():
        return []
    known = {
        "".join(block.split())
        for path in packaged.rglob("*.crt")
        for block in _PEM.findall(path.read_text(errors="replace"))
    }
    return [b for b in _PEM.findall(bundle.read_text()) if "".join(b.split()) not in known]


def _recipe_label(tag: str) -> str | None:
    """The stand-in recipe digest an image carries; None if absent or not a stand-in."""
    template = f'{{{{index .Config.Labels "{RECIPE_LABEL}"}}}}'
    found = docker("image", "inspect", "-f", template, tag, check=False)
    label = found.stdout.strip()
    return label if found.returncode == 0 and label and label != "<no value>" else None


def _build_standin(tag: str, context: Path) -> None:
    """Build the stand-in ``tag`` from ``context`` on the debootstrapped bookworm."""
    if _recipe_label(BOOKWORM) != _bookworm_recipe():
        _import_bookworm()
    with tempfile.TemporaryDirectory(prefix="tuner-standin-") as scratch:
        build = Path(scratch) / "context"
        shutil.copytree(context, build)
        (build / "ca").mkdir()
        for number, certificate in enumerate(extra_certificate_authorities()):
            (build / "ca" / f"build-host-{number}.crt").write_text(certificate + "\n")
        label = f"{RECIPE_LABEL}={_standin_recipe(context)}"
        command = ["docker", "build", "-q", "--build-arg", f"BASE={BOOKWORM}", "--label", label]
        done = subprocess.run(
            [*command, "-t", tag, str(build)],
            capture_output=True,
            text=True,
            timeout=BUILD_SECONDS,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"building the stand-in {tag} failed:\n{done.stderr[-3000:]}")


def _standin_recipe(context: Path) -> str:
    """Digest of what a stand-in is built from: its context, the base's recipe, the CAs."""
    digest = hashlib.sha256(_bookworm_recipe().encode())
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(context)).encode() + b"\0" + path.read_bytes())
    digest.update("".join(extra_certificate_authorities()).encode())
    return digest.hexdigest()[:16]


def ensure_base_images() -> dict[str, str]:
    """Make the base images exist; returns how each was had: ``kept`` (an image under the
    tag that is not a stand-in, or a stand-in of the current recipe), ``pulled`` or
    ``stand-in`` (built now: missing and not pullable, or built from an older recipe)."""
    how = {}
    for tag, context in (
        (PYTHON_BASE, STANDINS / "python"),
        (POSTGRES_BASE, STANDINS / "postgres"),
    ):
        if image_exists(tag):
            recipe = _recipe_label(tag)
            if recipe is None or recipe == _standin_recipe(context):
                how[tag] = "kept"
                continue
        elif _pulled(tag):
            how[tag] = "pulled"
            continue
        _build_standin(tag, context)
        how[tag] = "stand-in"
    return how


def dotenv(path: Path) -> dict[str, str]:
    """The KEY=value pairs of a .env file, as docker-compose reads them (no quoting)."""
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs
