"""What listing studies costs as a study grows: ``tuner status`` and ``tuner report`` as a
user runs them (a fresh process, the CLI), on an SQLite storage whose tuner study holds
100, 1,000 and 10,000 finished trials (synthetic values: no training).

    python bench/status_cost.py                       # prints a Markdown table
    python bench/status_cost.py --trials 100 10000 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from tuner.data import DatasetSpec
from tuner.storages import open_storage
from tuner.study import StudyConfig, create_or_resume, load_definitions, running_trial_template

DEFINITION = """
description = "10,100 grid points, for listing costs"

[model]
batch_norm = false
dropout = 0.0

[grid]
l1 = {l1}
l2 = {l2}
"""


def populate(url: str, folder: Path, trials: int) -> None:
    """A tuner study of 10,100 points, ``trials`` of them COMPLETE with per-fold records."""
    # 101 x 100 points: even 10,000 finished trials leave the grid incomplete (no final fit).
    grid = DEFINITION.format(l1=list(range(1, 102)), l2=list(range(1, 101)))
    (folder / "big.toml").write_text(grid)
    definition = load_definitions(folder)["big"]
    config = StudyConfig("big", definition, DatasetSpec("synthetic"), "0" * 32, epochs=1)
    storage = open_storage(url)
    study = create_or_resume(storage, config)
    study_id = storage.get_study_id_from_name("big")
    for grid_id in range(trials):
        template = running_trial_template(study, definition, grid_id)
        trial = optuna.trial.create_trial(
            params=template.params,
            distributions=template.distributions,
            value=0.5 + grid_id / 1e5,
            system_attrs=template.system_attrs,
            user_attrs={"fold_accuracies": [0.5, 0.5, 0.5], "accuracy_std": 0.0},
        )
        storage.create_new_trial(study_id, template_trial=trial)


def wall(command: list[str], cwd: Path, repeats: int) -> float:
    """Median wall time of the command in a fresh process."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tuner = [sys.executable, "-m", "tuner"]
    rows = []
    for trials in args.trials:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            url = f"sqlite:///{folder / 'big.db'}"
            populate(url, folder, trials)
            status = wall([*tuner, "status", "--storage", url], folder, args.repeats)
            report = wall([*tuner, "report", "--storage", url], folder, args.repeats)
            rows.append((trials, status, report))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print("| finished trials | `tuner status` | `tuner report` (nothing complete) |")
    print("| ---: | ---: | ---: |")
    for trials, status, report in rows:
        print(f"| {trials:,} | {status:.2f} s | {report:.2f} s |")


if __name__ == "__main__":
    main()
