"""Claim and status cost against study size, on SQLite and PostgreSQL.

Fills a study with 100, 1,000 and 10,000 finished trials that carry what tuner really
records (3 folds of 20-epoch curves, per-fold numbers, host, device ...), then times:

* a worker's first claim (its ledger reads every trial's state once),
* steady-state claims (the ledger reads only what changed),
* ``tuner status`` (``study_status``),
* and, for comparison, a full read of the trials, which is what every claim and status
  cost before the lean ledger (``study.get_trials()``).

    python bench/claims.py                      # SQLite and, if installed, PostgreSQL 15
    python bench/claims.py --sizes 100 1000     # fewer sizes
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuner.data import DatasetSpec
from tuner.reporting import study_status
from tuner.scheduling import GridScheduler
from tuner.storages import open_storage
from tuner.study import (
    StudyConfig,
    StudyDefinition,
    TrainingProtocol,
    create_or_resume,
    load,
    running_trial_template,
    schema,
)

EPOCHS, FOLDS = 20, 3


def definition_for(points: int) -> StudyDefinition:
    """A two-layer grid with room for ``points`` finished trials and more to claim."""
    wide = points // 10 + 2
    return StudyDefinition(
        name="claims",
        description="benchmark grid",
        batch_norm=True,
        dropout=0.2,
        grid={"l1": tuple(range(1, wide + 1)), "l2": tuple(range(1, 11))},
        protocol=TrainingProtocol(),
    )


def realistic_attrs(grid_id: int) -> dict[str, object]:
    curve = [0.5 + 0.01 * e for e in range(EPOCHS)]
    folds = {
        schema.fold_key(f): {
            "fold": f,
            "accuracy": 0.8,
            "loss": 0.5,
            "seconds": 12.5,
            "history": {key: curve for key in schema.HISTORY_KEYS},
        }
        for f in range(FOLDS)
    }
    return {
        **folds,
        schema.UNITS: [grid_id, 8],
        schema.FOLD_ACCURACIES: [0.8] * FOLDS,
        schema.FOLD_LOSSES: [0.5] * FOLDS,
        schema.ACCURACY_STD: 0.01,
        schema.LOSS_MEAN: 0.5,
        schema.LOSS_STD: 0.01,
        schema.TRAIN_SECONDS: 37.5,
        schema.WALL_SECONDS: 38.0,
        schema.HOST: "bench-host",
        schema.PID: 4242,
        schema.DEVICE: "CPU:0",
        schema.TRAINER: "packed",
        schema.BACKEND: "tensorflow",
    }


def fill(storage: optuna.storages.RDBStorage, study: optuna.Study, points: int) -> None:
    definition = StudyConfig.from_study(study).definition
    study_id = storage.get_study_id_from_name(study.study_name)
    for grid_id in range(points):
        template: FrozenTrial = running_trial_template(study, definition, grid_id)
        template.state = TrialState.COMPLETE
        template.values = [0.8]
        template.datetime_complete = template.datetime_start + datetime.timedelta(seconds=38)
        template.user_attrs = realistic_attrs(grid_id)
        template.intermediate_values = {f: 0.8 for f in range(FOLDS)}
        storage.create_new_trial(study_id, template_trial=template)


def timed(action: object) -> float:
    started = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - started


def measure(url: str, points: int) -> dict[str, float]:
    storage = open_storage(url)
    definition = definition_for(points)
    config = StudyConfig("claims", definition, DatasetSpec("synthetic"), "0" * 32, EPOCHS)
    study = create_or_resume(storage, config)
    fill(storage, study, points)
    study, _ = load(storage, "claims")
    scheduler = GridScheduler(storage, url, study, definition)

    def claim_and_finish() -> None:
        claims, _ = scheduler.claim(1)
        scheduler.complete(claims[0], 0.8)

    first = timed(claim_and_finish)
    steady = statistics.median(timed(claim_and_finish) for _ in range(7))
    status = statistics.median(timed(lambda: study_status(storage, study)) for _ in range(3))
    full = statistics.median(
        timed(lambda: load(storage, "claims")[0].get_trials(deepcopy=False)) for _ in range(2)
    )
    storage.engine.dispose()
    return {"first claim": first, "claim": steady, "status": status, "full read": full}


@contextmanager
def storages(with_postgres: bool) -> Iterator[list[tuple[str, object]]]:
    folder = Path(tempfile.mkdtemp(prefix="tuner-claims-"))
    backends: list[tuple[str, object]] = [
        ("SQLite", lambda n: f"sqlite:///{folder / f'claims-{n}.db'}")
    ]
    if not with_postgres:
        yield backends
        return
    from tests import postgres

    if not postgres.available():
        print("PostgreSQL 15 not installed: SQLite only", flush=True)
        yield backends
        return
    with postgres.running_server() as server:
        yield [*backends, ("PostgreSQL", lambda n: server.new_database())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with storages(not args.no_postgres) as backends:
        print("| storage | trials | first claim | claim | status | full read (old claim) |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, url_for in backends:
            for points in args.sizes:
                r = measure(url_for(points), points)  # type: ignore[operator]
                print(
                    f"| {name} | {points:,} | {r['first claim'] * 1000:.0f} ms "
                    f"| {r['claim'] * 1000:.1f} ms | {r['status'] * 1000:.0f} ms "
                    f"| {r['full read'] * 1000:.0f} ms |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
