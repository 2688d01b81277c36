"""Storage load of live learning curves: 16 workers, each training 32-point batches, on one
PostgreSQL. Curve writes per second at the server, and what they do to claim latency.

SIMULATED TRAINING: each worker runs tuner's own GridScheduler and TrialRunner with a
batch evaluation that "trains" by sleeping one epoch time per epoch and records every
point's per-epoch value through tuner's own recorders (``record_epoch``: buffered, one
transaction per batch, at most one per ``--curve-interval``). It measures the curves'
cost on the storage, not training. Run once with the curves written every epoch
(``interval 0``: what unthrottled live curves would cost) and once with tuner's default.

    python bench/live_curves_load.py            # 16 workers x 32-point batches, 2 batches each
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


def child(url: str, start_line: Path, batch: int, epochs: int, epoch_s: float, every: float):
    """One worker: claim a batch, simulate its epochs recording curves, complete; JSON out."""
    import optuna

    from tuner.scheduling import GridScheduler, TrialRunner
    from tuner.storages import open_storage
    from tuner.study import load

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    storage = open_storage(url, must_exist=True)
    study, config = load(storage, "curves")
    scheduler = GridScheduler(
        storage,
        url,
        study,
        config.definition,
        expected_workers=int(os.environ["BENCH_WORKERS"]),
        curve_interval=every,
    )
    claims: list[float] = []
    original_claim = scheduler.claim

    def timed_claim(count: int = 1):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        result = original_claim(count)
        claims.append(time.perf_counter() - t0)
        return result

    scheduler.claim = timed_claim  # type: ignore[method-assign]
    writers = []

    def evaluate_batch(claimed, recorders):  # type: ignore[no-untyped-def]
        for epoch in range(1, epochs + 1):
            time.sleep(epoch_s)
            for recorder in recorders:
                recorder.record_epoch(epoch, 0.5 + epoch / 1000)
        recorders[0].flush_curve()
        writers.append(recorders[0].curves.writes)
        return [0.5 + epochs / 1000] * len(claimed)

    (start_line / f"ready-{os.getpid()}").touch()
    while not (start_line / "go").exists():
        time.sleep(0.05)
    started = time.time()
    TrialRunner(
        scheduler,
        lambda claim, recorder: evaluate_batch([claim], [recorder])[0],
        evaluate_batch=evaluate_batch,
        claim_size=batch,
        poll_seconds=0.2,
    ).run()
    print(
        json.dumps({"claims": claims, "writes": sum(writers), "start": started, "end": time.time()})
    )


def run(
    url: str, workers: int, batch: int, batches: int, epochs: int, epoch_s: float, every: float
) -> dict[str, float]:
    import optuna
    import sqlalchemy

    from tuner.data import DatasetSpec
    from tuner.storages import open_storage
    from tuner.study import StudyConfig, StudyDefinition, TrainingProtocol, create_or_resume

    points = workers * batch * batches
    definition = StudyDefinition(
        name="curves",
        description="live-curve load benchmark (simulated training)",
        batch_norm=False,
        dropout=0.0,
        grid={"l1": tuple(range(1, points // 8 + 1)), "l2": tuple(range(1, 9))},
        protocol=TrainingProtocol(),
    )
    storage = open_storage(url)
    config = StudyConfig("curves", definition, DatasetSpec("synthetic"), "0" * 32, epochs)
    create_or_resume(storage, config)
    commits = sqlalchemy.text(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
    )
    with storage.engine.connect() as connection:
        before = connection.execute(commits).scalar() or 0
    with tempfile.TemporaryDirectory(prefix="tuner-curves-") as folder:
        line = Path(folder)
        command = [
            sys.executable,
            __file__,
            "--child",
            url,
            str(line),
            str(batch),
            str(epochs),
            str(epoch_s),
            str(every),
        ]
        procs = [
            subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "BENCH_WORKERS": str(workers)},
            )
            for _ in range(workers)
        ]
        while len(list(line.glob("ready-*"))) < workers:
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a worker exited before the start line")
            time.sleep(0.1)
        (line / "go").touch()
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=3600)
            if proc.returncode != 0:
                raise RuntimeError(f"a worker exited {proc.returncode}")
            results.append(json.loads(out.strip().splitlines()[-1]))
    time.sleep(0.6)  # pg_stat_database is updated at most every 500 ms
    with storage.engine.connect() as connection:
        after = connection.execute(commits).scalar() or 0
    trials = optuna.load_study(study_name="curves", storage=storage).get_trials(deepcopy=False)
    per_point = Counter(t.system_attrs["grid_id"] for t in trials if t.state.name == "COMPLETE")
    curves_whole = all(sorted(t.intermediate_values) == list(range(1, epochs + 1)) for t in trials)
    storage.engine.dispose()
    claims = sorted(c for r in results for c in r["claims"])
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    return {
        "points": points,
        "wall": wall,
        "curve_writes": sum(r["writes"] for r in results) / wall,
        "commits": (after - before) / wall,
        "claim_p50": statistics.median(claims),
        "claim_p99": claims[min(len(claims) - 1, round(0.99 * (len(claims) - 1)))],
        "ok": sorted(per_point) == list(range(points))
        and set(per_point.values()) == {1}
        and curves_whole,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        a = sys.argv
        child(a[2], Path(a[3]), int(a[4]), int(a[5]), float(a[6]), float(a[7]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=2, help="batches per worker")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--epoch-seconds", type=float, default=0.5)
    parser.add_argument("--intervals", type=float, nargs="+", default=[0.0, 5.0])
    args = parser.parse_args()
    from tests import postgres

    if not postgres.available():
        sys.exit("PostgreSQL 15 is needed (.ci/run installs it)")
    print(
        f"machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}; "
        f"PostgreSQL 15 on the same machine; {args.workers} workers x {args.batch}-point "
        f"batches, {args.epochs} epochs of {args.epoch_seconds} s (SIMULATED training)",
        flush=True,
    )
    print(
        "| curve interval | points | wall | curve writes/s | server commits/s "
        "| claim p50 | claim p99 | exactly once, whole curves |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    with postgres.running_server(max_connections=200) as server:
        for every in args.intervals:
            r = run(
                server.new_database(),
                args.workers,
                args.batch,
                args.batches,
                args.epochs,
                args.epoch_seconds,
                every,
            )
            print(
                f"| {every:g} s | {r['points']:,} | {r['wall']:.1f} s | {r['curve_writes']:.1f} "
                f"| {r['commits']:.0f} | {r['claim_p50'] * 1000:.0f} ms "
                f"| {r['claim_p99'] * 1000:.0f} ms | {'yes' if r['ok'] else 'NO'} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
