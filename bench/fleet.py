"""A fleet of workers claiming from one PostgreSQL through PgBouncer: claims per second and
claim latency at N = 8, 32, 64 worker processes.

NO-OP EVALUATION: each worker claims a grid point and completes it at once with a fixed
value, so this measures the scheduler and the storage (the claim protocol of docs/claims.md:
lock, reap, read, create, heartbeat; then the tell), not training. It is the upper bound on
how many points per second one PostgreSQL can hand out; docs/scaling.md turns it into fleet
sizes.

Each worker is a separate process running tuner's own GridScheduler (claim(1), then
complete), as `tuner worker --trainer packed` does per point. Workers start, open the
storage and load the study, and wait at a start line, so process start-up is not in the
figures. Every run is checked: each grid point COMPLETE exactly once, nothing else left.

    python bench/fleet.py                          # N = 8 32 64, 20 points per worker
    python bench/fleet.py --workers 8 --points-per-worker 50
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

EPOCHS = 20


def definition_for(points: int):  # type: ignore[no-untyped-def]
    from tuner.study import StudyDefinition, TrainingProtocol

    return StudyDefinition(
        name="fleet",
        description="fleet benchmark grid (no-op evaluation)",
        batch_norm=False,
        dropout=0.0,
        grid={"l1": tuple(range(1, points // 10 + 1)), "l2": tuple(range(1, 11))},
        protocol=TrainingProtocol(),
    )


def child(url: str, study_name: str, start_line: Path) -> None:
    """One worker: claim one point, complete it, until nothing is left; prints JSON."""
    import optuna

    from tuner.scheduling import GridScheduler
    from tuner.storages import open_storage
    from tuner.study import StudyConfig, load

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    storage = open_storage(url, must_exist=True)
    study, _ = load(storage, study_name)
    definition = StudyConfig.from_study(study).definition
    scheduler = GridScheduler(storage, url, study, definition)
    (start_line / f"ready-{os.getpid()}").touch()
    while not (start_line / "go").exists():
        time.sleep(0.05)
    claims, completes = [], []
    started = time.time()
    while True:
        t0 = time.perf_counter()
        claimed, _ = scheduler.claim(1)
        t1 = time.perf_counter()
        if not claimed:
            break
        claims.append(t1 - t0)
        scheduler.complete(claimed[0], 0.5)
        completes.append(time.perf_counter() - t1)
    print(
        json.dumps({"claims": claims, "completes": completes, "start": started, "end": time.time()})
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(workers: int, points: int, direct_url: str, pooled_url: str) -> dict[str, float]:
    import optuna

    from tuner.data import DatasetSpec
    from tuner.storages import open_storage
    from tuner.study import StudyConfig, create_or_resume

    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    definition = definition_for(points)
    storage = open_storage(direct_url)
    config = StudyConfig("fleet", definition, DatasetSpec("synthetic"), "0" * 32, EPOCHS)
    create_or_resume(storage, config)
    with tempfile.TemporaryDirectory(prefix="tuner-fleet-") as folder:
        start_line = Path(folder)
        command = [sys.executable, __file__, "--child", pooled_url, "fleet", str(start_line)]
        procs = [
            subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(workers)
        ]
        while len(list(start_line.glob("ready-*"))) < workers:
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a worker exited before the start line")
            time.sleep(0.1)
        (start_line / "go").touch()
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=3600)
            if proc.returncode != 0:
                raise RuntimeError(f"a worker exited {proc.returncode}")
            results.append(json.loads(out.strip().splitlines()[-1]))
    trials = optuna.load_study(study_name="fleet", storage=storage).get_trials(deepcopy=False)
    states = Counter(t.state.name for t in trials)
    per_point = Counter(t.system_attrs["grid_id"] for t in trials if t.state.name == "COMPLETE")
    exactly_once = (
        states == Counter({"COMPLETE": points})
        and sorted(per_point) == list(range(points))
        and set(per_point.values()) == {1}
    )
    storage.engine.dispose()
    claims = [c for r in results for c in r["claims"]]
    completes = [c for r in results for c in r["completes"]]
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    return {
        "workers": workers,
        "points": points,
        "claimed": len(claims),
        "wall": wall,
        "rate": len(claims) / wall,
        "claim_p50": statistics.median(claims),
        "claim_p99": percentile(claims, 0.99),
        "complete_p50": statistics.median(completes),
        "exactly_once": exactly_once,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--points-per-worker", type=int, default=20)
    parser.add_argument("--pool-size", type=int, default=20, help="PgBouncer server connections")
    args = parser.parse_args()
    from tests import postgres

    if not postgres.available() or not postgres.PGBOUNCER.exists():
        sys.exit("PostgreSQL 15 and PgBouncer are needed (.ci/run installs them)")
    print(
        f"machine: {platform.node()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"{platform.platform()}; PostgreSQL 15 and PgBouncer (transaction mode, "
        f"pool {args.pool_size}) on the same machine; NO-OP evaluation",
        flush=True,
    )
    print(
        "| workers | points | wall | claims/s | claim p50 | claim p99 | tell p50 | exactly once |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    with (
        postgres.running_server(max_connections=200) as server,
        postgres.running_pgbouncer(server, args.pool_size) as bouncer,
    ):
        for workers in args.workers:
            points = -(-workers * args.points_per_worker // 10) * 10
            direct = server.new_database()
            pooled = direct.replace(f":{server.port}/", f":{bouncer}/")
            r = run(workers, points, direct, pooled)
            once = "yes" if r["exactly_once"] else "NO"
            print(
                f"| {workers} | {points:,} | {r['wall']:.1f} s | {r['rate']:.0f} "
                f"| {r['claim_p50'] * 1000:.0f} ms | {r['claim_p99'] * 1000:.0f} ms "
                f"| {r['complete_p50'] * 1000:.0f} ms | {once} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
