"""deploy/slurm/tuner-workers.sbatch for real: a one-node Slurm cluster (tests/slurm.py), a
real PostgreSQL, the study created by `tuner launch --workers 0`, then the script submitted
unchanged as an array of three workers, the way README's "Beyond one machine" says.

One task is sent SIGTERM while it trains, as Slurm does before a time limit
(``--signal=B:TERM@120`` signals the batch shell; ``scancel --batch`` does the same by hand):
its points go back and the other tasks train them. That the signal lands while it trains is
made certain, not left to timing: the victim's worker is frozen (SIGSTOP) early in its batch,
its held trials are read from the storage while it cannot move, the TERM is sent and seen
pending on the frozen process, and only then is it let go (SIGCONT). The storage URL reaches
the tasks only through a mode-0600 file named by TUNER_STORAGE_FILE. Marker ``slurm``: README's
``python -m pytest`` leaves it out, .ci/run runs it (as root, with slurm-wlm and munge).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from tests import slurm
from tests.helpers import run_tuner, synthetic_images
from tests.postgres import PASSWORD
from tuner.study import schema

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "slurm" / "tuner-workers.sbatch"
STUDY = "fleet"
GRID = 9
TASKS = 3
# Each task trains its fair share (3 points) as one batch of EPOCHS epochs (about 5 s here). The
# victim is frozen while the curves it has stored show at most EARLY epochs: with a curve written
# every second (--curve-interval 1) it has then trained at most a second's epochs more, and has
# half its batch or more left to train when the signal lands.
STUDY_TOML = """
description = "slurm test: nine small points"

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
EPOCHS = 48
EARLY = EPOCHS // 2
TRAIN_IMAGES = 2400
DONE_SECONDS = 900


@pytest.fixture(scope="module")
def cluster() -> Iterator[slurm.Cluster]:
    reason = slurm.missing()
    if reason is not None:
        pytest.skip(reason)
    with slurm.running_cluster() as running:
        yield running


def trials(url: str) -> list[FrozenTrial]:
    return optuna.load_study(study_name=STUDY, storage=url).get_trials(deepcopy=False)


def task_states(cluster: slurm.Cluster, job: str) -> dict[int, str]:
    """Array task id -> Slurm state, for the tasks squeue still lists."""
    listed = cluster.run("squeue", "-h", "-r", "-j", job, "-o", "%K %T")
    return {int(task): state for task, state in (line.split() for line in listed.splitlines())}


def worker_pids(folder: Path, job: str) -> dict[int, int]:
    """Array task id -> pid of its `tuner worker`, as each task's output file says."""
    pids = {}
    for path in folder.glob(f"tuner-worker-{job}_*.out"):
        found = re.search(r"worker pid (\d+)", path.read_text(errors="replace"))
        if found:
            pids[int(path.stem.rsplit("_", 1)[1])] = int(found.group(1))
    return pids


def command_lines() -> str:
    """Every process's command line on this machine, as `ps` would show them."""
    lines = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                continue
    return "\n".join(lines)


def process_state(pid: int) -> str:
    """The process's state letter (R, S, T for stopped...) as /proc/PID/stat gives it."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


def term_pending(pid: int) -> bool:
    """Whether SIGTERM waits, undelivered, on the (stopped) process."""
    status = Path(f"/proc/{pid}/status").read_text()
    pending = 0
    for line in status.splitlines():
        if line.startswith(("SigPnd:", "ShdPnd:")):
            pending |= int(line.split()[1], 16)
    return bool(pending & (1 << (signal.SIGTERM - 1)))


def wait(what: str, condition: object, cluster: slurm.Cluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting until {what}\n{cluster.logs()}"
        time.sleep(0.5)


def test_sbatch_array_completes_the_study_once_through_a_sigterm(
    cluster: slurm.Cluster, postgres_url: str, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    (work / "studies").mkdir(parents=True)
    (work / "studies" / f"{STUDY}.toml").write_text(STUDY_TOML)
    x_train, y_train = synthetic_images(TRAIN_IMAGES, seed=1)
    x_test, y_test = synthetic_images(300, seed=2)
    data = work / "fleet.npz"
    np.savez(data, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    storage_file = tmp_path / "storage-url"
    storage_file.write_text(postgres_url + "\n")
    storage_file.chmod(0o600)
    # As README says: the venv's tuner on PATH, the storage in a file, then launch and sbatch.
    env = {
        "TUNER_STORAGE_FILE": str(storage_file),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    launch = run_tuner(
        "launch",
        "--variant",
        STUDY,
        "--studies",
        str(work / "studies"),
        "--dataset",
        str(data),
        "--epochs",
        str(EPOCHS),
        "--workers",
        "0",
        cwd=work,
        env=env,
    )
    assert launch.returncode == 0, launch.stderr
    assert trials(postgres_url) == []

    # Only the test's own settings reach the job (Slurm exports the submitting environment).
    job_env = {k: v for k, v in os.environ.items() if not k.startswith(("TUNER_", "SLURM_"))}
    submit = [
        "sbatch",
        "--parsable",
        f"--array=1-{TASKS}",
        # Site settings the script leaves to the user: one CPU per task on this 2-core node.
        "--cpus-per-task=1",
        "--mem=2G",
        f"--chdir={work}",
        str(SCRIPT),
        "--variant",
        STUDY,
        "--curve-interval",
        "1",
    ]
    job_env = {**job_env, **env, "PYTHONUNBUFFERED": "1"}
    job = cluster.run(*submit, env=job_env).strip().split(";")[0]
    assert job.isdigit(), job

    # The victim: a task whose worker holds trials early in training (units recorded once its
    # claim has returned), found through the pid its trials and its output file carry.
    def early(held: list[FrozenTrial]) -> bool:
        return bool(held) and all(max(t.intermediate_values, default=-1) <= EARLY for t in held)

    def held_by(pid: int) -> list[FrozenTrial]:
        return [
            t
            for t in trials(postgres_url)
            if t.state == TrialState.RUNNING
            and schema.UNITS in t.user_attrs
            and t.user_attrs.get(schema.PID) == pid
        ]

    frozen: list[tuple[int, int, list[FrozenTrial]]] = []

    def freeze_victim() -> bool:
        """Freeze a task's worker early in its batch; True once one is frozen there."""
        for task, pid in sorted(worker_pids(work, job).items()):
            if not early(held_by(pid)):
                continue
            os.kill(pid, signal.SIGSTOP)
            wait("the victim is stopped", lambda p=pid: process_state(p) in "Tt", cluster, 60)
            held = held_by(pid)  # what it holds now that it cannot move
            if early(held):
                frozen.append((task, pid, held))
                return True
            os.kill(pid, signal.SIGCONT)
        return False

    wait("a task is early in its batch", freeze_victim, cluster, DONE_SECONDS)
    task, pid, held = frozen[0]
    try:
        # No password on any command line (ps), nor in what Slurm shows of the job.
        assert PASSWORD not in command_lines()
        assert PASSWORD not in cluster.run("scontrol", "show", "job", "-d", job)
        cluster.run("scancel", "--batch", "--signal=TERM", f"{job}_{task}")
        # The batch shell passes the TERM on; it waits on the frozen worker until let go.
        wait("the worker has the TERM", lambda: term_pending(pid), cluster, 60)
    finally:
        os.kill(pid, signal.SIGCONT)
    wait("every task has ended", lambda: not task_states(cluster, job), cluster, DONE_SECONDS)

    outputs = {
        int(path.stem.rsplit("_", 1)[1]): path.read_text(errors="replace")
        for path in work.glob(f"tuner-worker-{job}_*.out")
    }
    assert sorted(outputs) == list(range(1, TASKS + 1)), sorted(outputs)
    victim_output = outputs[task]
    assert "got SIGTERM" in victim_output, victim_output
    assert "tuner worker exited 143" in victim_output, victim_output
    for other, output in outputs.items():
        if other != task:
            assert "grid done: 9/9 complete" in output, output
            assert "tuner worker exited 0" in output, output
    info = cluster.run("scontrol", "show", "job", f"{job}_{task}")
    assert "ExitCode=143:0" in info, info

    final = trials(postgres_url)
    complete = [t for t in final if t.state == TrialState.COMPLETE]
    # Every grid point COMPLETE exactly once.
    assert sorted(t.system_attrs[schema.GRID_ID] for t in complete) == list(range(GRID))
    # The victim's points were given back (FAIL, interrupted) and trained by another task:
    # every trial it held when it was frozen, and any other it had claimed by then.
    victim_pid = pid
    given_back = [
        t
        for t in final
        if t.user_attrs.get(schema.PID) == victim_pid and t.state != TrialState.COMPLETE
    ]
    assert {h.number for h in held} <= {t.number for t in given_back}, given_back
    assert all(t.state == TrialState.FAIL for t in given_back), given_back
    assert all(t.system_attrs.get(schema.INTERRUPTED) is True for t in given_back)
    by_grid = {t.system_attrs[schema.GRID_ID]: t for t in complete}
    for trial in given_back:
        rerun = by_grid[trial.system_attrs[schema.GRID_ID]]
        assert rerun.number > trial.number and rerun.user_attrs[schema.PID] != victim_pid
    # Nothing else failed: every FAIL was interrupted, and none belongs to another task (a
    # point the victim claimed but had not yet marked as its own carries no pid).
    failed = [t for t in final if t.state == TrialState.FAIL]
    assert all(t.system_attrs.get(schema.INTERRUPTED) is True for t in failed), failed
    assert all(t.user_attrs.get(schema.PID, victim_pid) == victim_pid for t in failed), failed

    # No password in any file Slurm wrote: the tasks' output and the daemons' logs and state.
    written = [*work.glob("tuner-worker-*"), *(p for p in cluster.base.rglob("*") if p.is_file())]
    for path in written:
        if path.is_file() and not path.is_symlink():
            assert PASSWORD.encode() not in path.read_bytes(), path
