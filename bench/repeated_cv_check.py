"""Repeated cross-validation on a real study: the report's and the API's intervals and tied
set against those recomputed here, with SciPy, from the fold scores stored on the trials.

Launches ``2layer`` on Fashion-MNIST (Debian's dataset-fashion-mnist, or Keras' download)
with ``--repeats R`` into a fresh SQLite storage, reports it, then reads every COMPLETE
trial's per-fold records (``fold_0`` ... ``fold_{R*k-1}``) and recomputes, independently of
tuner.stats: each point's 95% interval (Bouckaert & Frank's repeated-CV correction: the
variance of the R*k scores times 1/(R*k) + 1/(k-1), Student's t with R*k - 1 degrees of
freedom), each point's paired test against the best, Holm's adjustment, and the tied set.
Exits 1 if any of them differs from comparison.csv, report.md, the trial's recorded
interval, or ``tuner.load_results(...).to_frame()``.

    python bench/repeated_cv_check.py --subset 12000 --epochs 3 --repeats 2
    python bench/repeated_cv_check.py --subset 1200 --epochs 1 --json out.json
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from rich.console import Console
from scipy import stats

import tuner
from tuner.study import schema

ALPHA = 0.05
TOLERANCE = 1e-9


@dataclass
class Point:
    """One grid point as recomputed here."""

    trial: optuna.trial.FrozenTrial
    scores: list[float]
    mean: float
    low: float
    high: float
    raw_p: float = 1.0
    p: float = 1.0
    tied: bool = True

    @property
    def shown(self) -> tuple[float, float]:
        """The interval as tables show it: cut to accuracy's range [0, 1]."""
        return max(self.low, 0.0), min(self.high, 1.0)


def recomputed(trials: list[optuna.trial.FrozenTrial], k: int) -> list[Point]:
    """Each point's interval, Holm-adjusted p against the best and tie, from its folds."""
    scores = []
    for trial in trials:
        folds = sorted(
            (schema.fold_of_key(key), value["accuracy"])
            for key, value in trial.user_attrs.items()
            if schema.fold_of_key(key) is not None
        )
        scores.append([accuracy for _, accuracy in folds])
    j = len(scores[0])
    factor = 1 / j + 1 / (k - 1)
    rows = []
    for trial, values in zip(trials, scores, strict=True):
        mean = sum(values) / j
        low, high = stats.t.interval(
            1 - ALPHA, j - 1, loc=mean, scale=math.sqrt(factor * stats.tvar(values))
        )
        rows.append(Point(trial, values, mean, float(low), float(high)))
    raw = []
    for values in scores[1:]:
        d = [a - b for a, b in zip(scores[0], values, strict=True)]
        mean, variance = sum(d) / j, stats.tvar(d)
        t = mean / math.sqrt(factor * variance) if variance else math.inf
        raw.append(float(2 * stats.t.sf(abs(t), j - 1)))
    order = sorted(range(len(raw)), key=raw.__getitem__)
    adjusted, running = [0.0] * len(raw), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(raw) - rank) * raw[index]))
        adjusted[index] = running
    for row, p, unadjusted in zip(rows[1:], adjusted, raw, strict=True):
        row.raw_p, row.p, row.tied = unadjusted, p, p >= ALPHA
    return rows


def label(trial: optuna.trial.FrozenTrial) -> str:
    return f"{trial.params['l1']}-{trial.params['l2']}"


def check(root: Path, subset: int, epochs: int, repeats: int) -> dict[str, Any]:
    """Launch, report and compare; the figures and every mismatch found."""
    storage = f"sqlite:///{root / 'tuner.db'}"
    buffer = io.StringIO()
    started = time.perf_counter()
    launched = tuner.launch(
        "2layer",
        "fashion-mnist",
        subset=subset,
        epochs=epochs,
        repeats=repeats,
        storage=storage,
        out=root / "report",
        console=Console(file=buffer, width=200),
    )
    seconds = time.perf_counter() - started
    study = optuna.load_study(study_name="2layer", storage=storage)
    k = launched["2layer"].definition.protocol.folds
    trials = sorted(
        study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)),
        key=lambda t: (-(t.value or 0.0), t.number),
    )
    rows = recomputed(trials, k)
    problems = []

    def differ(what: str, got: float, want: float) -> None:
        if not math.isclose(got, want, rel_tol=0, abs_tol=TOLERANCE):
            problems.append(f"{what}: {got!r} != {want!r}")

    frame = tuner.load_results("2layer", storage=storage)["2layer"].to_frame()
    for row in rows:
        trial = row.trial
        name = label(trial)
        if len(row.scores) != repeats * k:
            problems.append(f"{name}: {len(row.scores)} fold scores, not {repeats * k}")
        if row.scores != trial.user_attrs[schema.FOLD_ACCURACIES]:
            problems.append(f"{name}: fold_K records differ from fold_accuracies")
        differ(f"{name} value", float(trial.value or 0.0), float(row.mean))
        recorded = trial.user_attrs[schema.ACCURACY_INTERVAL]
        differ(f"{name} recorded low", recorded[0], row.low)
        differ(f"{name} recorded high", recorded[1], row.high)
        shown = frame[frame["trial"] == trial.number].iloc[0]
        differ(f"{name} API low", float(shown["cv_accuracy_ci_low"]), row.shown[0])
        differ(f"{name} API high", float(shown["cv_accuracy_ci_high"]), row.shown[1])
        differ(f"{name} API p", float(shown["p_vs_best_holm"]), row.p)
        if bool(shown["tied_with_best"]) != row.tied:
            problems.append(f"{name}: API tied {shown['tied_with_best']}, recomputed {row.tied}")
    with open(root / "report" / "comparison.csv") as handle:
        (csv_row,) = list(csv.DictReader(handle))
    differ("comparison.csv low", float(csv_row["cv_accuracy_ci_low"]), rows[0].shown[0])
    differ("comparison.csv high", float(csv_row["cv_accuracy_ci_high"]), rows[0].shown[1])
    tied = [label(r.trial) for r in rows[1:] if r.tied]
    if sorted(csv_row["tied_with_best"].split()) != sorted(tied):
        problems.append(f"comparison.csv tied {csv_row['tied_with_best']!r}, recomputed {tied}")
    if csv_row["cv_repeats"] != str(repeats):
        problems.append(f"comparison.csv cv_repeats {csv_row['cv_repeats']}")
    markdown = (root / "report" / "report.md").read_text()
    best = rows[0]
    sentence = f"2layer: best {label(best.trial)} (CV accuracy {best.mean:.4f} "
    sentence += f"[{best.shown[0]:.4f}, {best.shown[1]:.4f}]"
    if sentence not in markdown:
        problems.append(f"report.md lacks {sentence!r}")
    if tied and ("tied with it" not in markdown or ", ".join(tied) not in markdown):
        problems.append(f"report.md does not name the tied points {tied}")
    return {
        "subset": subset,
        "epochs": epochs,
        "repeats": repeats,
        "folds": k,
        "launch_and_report_seconds": round(seconds, 1),
        "machine": f"{platform.machine()}, TensorFlow",
        "points": [
            {
                "units": label(r.trial),
                "mean": r.mean,
                "low": r.low,
                "high": r.high,
                "p_vs_best": r.raw_p,
                "p_vs_best_holm": r.p,
                "tied_with_best": r.tied,
            }
            for r in rows
        ],
        "tied": tied,
        # The ties sentence of "What is significant", without the advice that may follow.
        "sentence": next(
            line.removeprefix("- ").split(". Advice:")[0]
            for line in markdown.splitlines()
            if line.startswith("- 2layer: best")
        ),
        "problems": problems,
    }


def markdown_table(result: dict[str, Any]) -> str:
    lines = [
        "| rank | units | CV accuracy | 95% CI | p vs best | Holm | tied |",
        "|---|---|---|---|---|---|---|",
    ]
    for rank, point in enumerate(result["points"], start=1):
        lines.append(
            f"| {rank} | {point['units']} | {point['mean']:.4f} | "
            f"[{point['low']:.4f}, {point['high']:.4f}] | {point['p_vs_best']:.3g} | "
            f"{point['p_vs_best_holm']:.3g} | "
            f"{'best' if rank == 1 else ('tied' if point['tied_with_best'] else '')} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=12000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = check(Path(folder), args.subset, args.epochs, args.repeats)
    print(
        f"2layer, {args.subset} Fashion-MNIST images, {args.epochs} epochs, "
        f"{args.repeats}x{result['folds']}-fold CV: launch + report "
        f"{result['launch_and_report_seconds']} s"
    )
    print(markdown_table(result))
    print(result["sentence"])
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if result["problems"]:
        for problem in result["problems"]:
            print("MISMATCH", problem)
        return 1
    print(
        "all equal: intervals, p-values and the tied set in comparison.csv, report.md, the "
        "trials' records and the API match the SciPy recomputation from the stored folds"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
