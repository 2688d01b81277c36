"""Trials per hour with 1, 2, ... local workers on this machine (`tuner launch --workers N`).

Each run is the real command in a fresh SQLite storage, so process start-up, TensorFlow
import, data loading and the claim protocol are all in the figure. With N workers the
CPU threads are split (cores // N each); one worker uses them all.

    python bench/scaling.py                       # 2layer, 6,000 images, 4 epochs, 1 and 2 workers
    python bench/scaling.py --workers 1 2 4 --results bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(workers: int, args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory() as folder:
        command = [
            sys.executable,
            "-m",
            "tuner",
            "launch",
            "--variant",
            args.variant,
            "--dataset",
            args.dataset,
            "--subset",
            str(args.subset),
            "--epochs",
            str(args.epochs),
            "--workers",
            str(workers),
            "--no-report",
            "--storage",
            f"sqlite:///{folder}/s.db",
        ]
        start = time.perf_counter()
        subprocess.run(command, check=True, cwd=folder, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="2layer")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--subset", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()
    from tuner.study import load_definitions

    points = load_definitions()[args.variant].grid_size
    rows = []
    for workers in args.workers:
        seconds = run(workers, args)
        per_hour = points / seconds * 3600
        rows.append((workers, seconds, per_hour))
        print(f"{workers} worker(s): {seconds:.1f} s for {points} trials = {per_hour:.0f} trials/h")
    if args.results:
        lines = [
            f"\n### Local workers: {args.variant}, {args.subset} images, {args.epochs} epochs "
            f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores)\n",
            "| workers | wall time | trials per hour |",
            "|---|---|---|",
            *[f"| {w} | {s:.1f} s | {h:.0f} |" for w, s, h in rows],
            "",
        ]
        with open(args.results, "a") as handle:
            handle.write("\n".join(lines))


if __name__ == "__main__":
    main()
