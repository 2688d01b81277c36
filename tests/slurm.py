"""A real, throw-away one-node Slurm cluster for tests (never a mock).

munged, slurmctld and slurmd run in the foreground, owned by :func:`running_cluster`, from
a configuration written in a temporary folder (ports, sockets, spool and state all there,
nothing under /etc or /var touched), and are stopped by their pids at the end. Needs root
and Debian's ``slurm-wlm`` and ``munge`` (``.ci/run`` installs them).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import free_port

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "scontrol", "sinfo")
START_SECONDS = 60


def missing() -> str | None:
    """Why no cluster can run here (the reason a test skips with), or None."""
    if os.geteuid() != 0:
        return "a one-node Slurm cluster needs root (slurmd runs jobs as their users)"
    absent = [name for name in (*DAEMONS, *CLIENTS) if shutil.which(name) is None]
    if absent:
        return f"{', '.join(absent)} not installed (.ci/run installs slurm-wlm and munge)"
    return None


@dataclass(frozen=True)
class Cluster:
    base: Path
    environment: dict[str, str]
    """SLURM_CONF and the munge socket for the clients (sbatch, squeue, ...)."""

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> str:
        """Run a Slurm client command against this cluster, in ``env`` (default: this
        process's environment); its stdout (exit 0 asserted)."""
        done = subprocess.run(
            args,
            env={**(os.environ if env is None else env), **self.environment},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"{' '.join(args)}: exit {done.returncode}: {done.stderr}"
        return done.stdout

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.base.glob("*.log"))
        )


def _configuration(base: Path, host: str) -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return f"""\
ClusterName=tunertest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={base / "munge.socket"}
CryptoType=crypto/munge
StateSaveLocation={base / "ctld"}
SlurmdSpoolDir={base / "slurmd"}
SlurmctldPidFile={base / "slurmctld.pid"}
SlurmdPidFile={base / "slurmd.pid"}
SlurmctldLogFile={base / "slurmctld.log"}
SlurmdLogFile={base / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SchedulerParameters=sched_interval=2
MinJobAge=600
KillWait=30
NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={memory * 9 // 10} State=UNKNOWN
PartitionName=main Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
"""


def _stop(process: subprocess.Popen[bytes], pidfile: Path | None = None) -> None:
    """SIGTERM the daemon (by its pid file when it runs under runuser), then wait for it."""
    pid = process.pid
    if pidfile is not None and pidfile.exists():
        with contextlib.suppress(ValueError):
            pid = int(pidfile.read_text().strip())
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_cluster() -> Iterator[Cluster]:
    """munged + slurmctld + slurmd for the block, with one partition ``main`` of this host."""
    base = Path(tempfile.mkdtemp(prefix="tuner-slurm-"))
    base.chmod(0o755)
    host = socket.gethostname().split(".")[0]
    munge = base / "munge"
    munge.mkdir(mode=0o700)
    key = munge / "munge.key"
    key.write_bytes(secrets.token_bytes(1024))
    key.chmod(0o400)
    for path in (munge, key):
        shutil.chown(path, "munge", "munge")
    for folder in ("ctld", "slurmd"):
        (base / folder).mkdir(mode=0o755)
    conf = base / "slurm.conf"
    conf.write_text(_configuration(base, host))
    environment = {"SLURM_CONF": str(conf)}
    started: list[tuple[subprocess.Popen[bytes], Path | None]] = []
    try:
        # munged refuses to run as root: as user munge, its socket in a folder it may write.
        sockets = base / "sockets"
        sockets.mkdir(mode=0o755)
        shutil.chown(sockets, "munge", "munge")
        munged_pid = munge / "munged.pid"
        munged = subprocess.Popen(
            [
                "runuser",
                "-u",
                "munge",
                "--",
                "munged",
                "--foreground",
                f"--key-file={key}",
                f"--socket={sockets / 'munge.socket'}",
                f"--pid-file={munged_pid}",
                f"--log-file={munge / 'munged.log'}",
                f"--seed-file={munge / 'munged.seed'}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        started.append((munged, munged_pid))
        _wait_for(lambda: (sockets / "munge.socket").exists(), munged, "munged")
        # slurm.conf names base/munge.socket: point it at the daemon's socket.
        (base / "munge.socket").symlink_to(sockets / "munge.socket")
        env = {**os.environ, **environment}
        for daemon in (["slurmctld", "-D", "-f", str(conf)], ["slurmd", "-D", "-N", host]):
            process = subprocess.Popen(
                daemon, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
            )
            started.append((process, None))
        cluster = Cluster(base, environment)

        def node_idle() -> bool:
            states = subprocess.run(
                ["sinfo", "-h", "-N", "-o", "%T"], env=env, capture_output=True, text=True
            )
            return states.stdout.strip() == "idle"

        for process, _ in started[1:]:
            _wait_for(node_idle, process, "the Slurm node to be idle", cluster)
        yield cluster
    finally:
        env = {**os.environ, **environment}
        subprocess.run(["scancel", "--user=root", "--full"], env=env, capture_output=True)
        for process, pidfile in reversed(started):
            _stop(process, pidfile)
        shutil.rmtree(base, ignore_errors=True)


def _wait_for(
    condition: object,
    process: subprocess.Popen[bytes],
    what: str,
    cluster: Cluster | None = None,
) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not condition():  # type: ignore[operator]
        if process.poll() is not None or time.monotonic() > deadline:
            said = cluster.logs() if cluster else (process.stderr.read() if process.stderr else "")
            raise RuntimeError(f"waiting for {what}: {process.args[0]} ended or timed out\n{said}")
        time.sleep(0.3)
