"""Users' own tables: tuner against GridSearchCV + scikeras, agreement and speed, one run.

Each side runs as its own fresh process, as a user runs it, on the same table file:

* ``tuner launch --variant 2layer --dataset FILE --target y`` (the default trainer, the
  default SQLite storage in a temporary folder, no report), its per-point CV score read
  back from the storage;
* ``GridSearchCV`` over a scikeras model built by tuner's own builder, on exactly tuner's
  training rows and folds (read with tuner's loader and split), with the same per-fold
  preprocessing: ``StandardScaler`` fitted on each fold's training part inside a
  ``Pipeline``, and for a regression the target standardised the same way
  (``TransformedTargetRegressor``) and scored by R², as tuner scores it.

Three tables, all made offline: scikit-learn's bundled digits as a CSV (10 classes), its
bundled diabetes as a Parquet file (a regression), and ``make_classification`` with
50,000 rows and 50 features (speed). Printed, and with ``--results`` appended to
bench/RESULTS.md: per-point scores under both and their differences, and each command's
wall time in its fresh process.

    python bench/own_data.py                            # all three
    python bench/own_data.py --only speed --epochs 3
    python bench/own_data.py --results bench/RESULTS.md

Needs the bench extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CASES = {
    # name: (file, target, epochs, what)
    "digits": ("digits.csv", "y", 20, "scikit-learn's digits (1,797 rows, 64 columns, 10 classes)"),
    "diabetes": ("diabetes.parquet", "y", 60, "scikit-learn's diabetes (442 rows, 10 columns)"),
    "speed": ("wide.csv", "y", 3, "make_classification: 50,000 rows, 50 columns, 2 classes"),
}
REPEATS = {"diabetes": 3}
"""Repeated CV where one split's noise hides agreement: 354 training rows leave one
point's R² spread over seeds at about 0.03, shared by the points of a batch (they see
one batch order); both sides score every point on the same 3 x 3 folds."""
AGREEMENT = {"digits": 0.01, "diabetes": 0.05}
"""Targets: mean per-point difference within 0.01 accuracy; within 5% of the R²."""


def write_tables(folder: Path) -> None:
    import pandas as pd
    from sklearn.datasets import load_diabetes, load_digits, make_classification

    digits = load_digits()
    frame = pd.DataFrame(digits.data.astype(int), columns=[f"p{i}" for i in range(64)])
    frame["y"] = digits.target
    frame.to_csv(folder / "digits.csv", index=False)
    diabetes = load_diabetes(as_frame=True).frame.rename(columns={"target": "y"})
    diabetes.to_parquet(folder / "diabetes.parquet")
    x, y = make_classification(
        n_samples=50_000, n_features=50, n_informative=20, n_redundant=10, random_state=0
    )
    wide = pd.DataFrame(x, columns=[f"f{i}" for i in range(50)])
    wide["y"] = y
    wide.to_csv(folder / "wide.csv", index=False)


def timed(command: list[str], cwd: Path) -> float:
    """A command's wall time in a fresh process (it must succeed)."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds


def tuner_scores(folder: Path, case: str) -> tuple[float, dict[str, float]]:
    import optuna

    from tuner.storages import open_storage

    file, target, epochs, _ = CASES[case]
    run = folder / f"tuner-{case}"
    run.mkdir()
    data = ["--dataset", str(folder / file), "--target", target, "--epochs", str(epochs)]
    launch = [sys.executable, "-m", "tuner", "launch", "--variant", "2layer", *data]
    repeats = ["--repeats", str(REPEATS[case])] if case in REPEATS else []
    seconds = timed([*launch, *repeats, "--no-report"], run)
    study = optuna.load_study(
        study_name="2layer", storage=open_storage(f"sqlite:///{run}/tuner.db")
    )
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    return seconds, {f"{t.params['l1']}-{t.params['l2']}": float(t.value) for t in complete}


def gridsearch_scores(folder: Path, case: str) -> tuple[float, dict[str, float]]:
    out = folder / f"gridsearch-{case}.json"
    seconds = timed(
        [sys.executable, __file__, "--gridsearch", case, "--folder", str(folder)], folder
    )
    return seconds, json.loads(out.read_text())


def run_gridsearch(folder: Path, case: str) -> None:
    """The GridSearchCV side, in this (fresh) process: writes its scores as JSON."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from scikeras.wrappers import KerasClassifier, KerasRegressor
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from tuner.data import DatasetSpec, load_dataset, repeat_seed, repeated_folds
    from tuner.study import FOLD_SEED, load_definitions
    from tuner.training import build_model

    file, target, epochs, _ = CASES[case]
    dataset = load_dataset(DatasetSpec.parse(str(folder / file), target=target))
    task = dataset.task
    definition = load_definitions()["2layer"].for_task(task)
    seeds = [repeat_seed(FOLD_SEED, r) for r in range(REPEATS.get(case, 1))]
    folds = repeated_folds(dataset.y_train, definition.protocol.folds, seeds, task)

    def model(l1: int, l2: int) -> object:  # scikeras calls it with a point's widths
        return build_model(definition, (l1, l2))

    common = {
        "model": model,
        "model__l1": 256,
        "model__l2": 32,
        "epochs": epochs,
        "batch_size": definition.protocol.batch_size,
        "verbose": 0,
    }
    if task.regression:
        estimator = TransformedTargetRegressor(
            regressor=Pipeline(
                [("scale", StandardScaler()), ("net", KerasRegressor(loss="mse", **common))]
            ),
            transformer=StandardScaler(),
        )
        prefix, scoring = "regressor__net__", "r2"
    else:
        estimator = Pipeline(
            [
                ("scale", StandardScaler()),
                ("net", KerasClassifier(loss="sparse_categorical_crossentropy", **common)),
            ]
        )
        prefix, scoring = "net__", "accuracy"
    grid = {f"{prefix}model__{name}": list(values) for name, values in definition.grid.items()}
    search = GridSearchCV(estimator, grid, cv=folds, scoring=scoring, refit=False, n_jobs=1)
    search.fit(dataset.x_train, dataset.y_train)
    results = search.cv_results_
    scores = {
        f"{p[prefix + 'model__l1']}-{p[prefix + 'model__l2']}": float(score)
        for p, score in zip(results["params"], results["mean_test_score"], strict=True)
    }
    (folder / f"gridsearch-{case}.json").write_text(json.dumps(scores))


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    flags = Path("/proc/cpuinfo").read_text()
    bf16 = ", avx512_bf16" if "avx512_bf16" in flags else ""
    return f"{model} ({platform.machine()}{bf16}), {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(CASES), action="append")
    parser.add_argument("--epochs", type=int, help="override every case's epochs")
    parser.add_argument("--results", type=Path, help="append a Markdown section here")
    parser.add_argument("--gridsearch", choices=sorted(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs:
        for name, (file, target, _, what) in CASES.items():
            CASES[name] = (file, target, args.epochs, what)
    if args.gridsearch:
        # The child: epochs come from its parent through the environment.
        if "BENCH_EPOCHS" in os.environ:
            file, target, _, what = CASES[args.gridsearch]
            CASES[args.gridsearch] = (file, target, int(os.environ["BENCH_EPOCHS"]), what)
        run_gridsearch(args.folder, args.gridsearch)
        return
    lines = [f"\n### Your own data vs GridSearchCV + scikeras ({time.strftime('%Y-%m-%d')})\n"]
    lines.append(f"Machine: {machine()}. Each side a fresh process; the same rows and folds.\n")
    print(lines[-1])
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        write_tables(folder)
        for case in args.only or list(CASES):
            file, target, epochs, what = CASES[case]
            os.environ["BENCH_EPOCHS"] = str(epochs)
            tuner_wall, ours = tuner_scores(folder, case)
            search_wall, theirs = gridsearch_scores(folder, case)
            labels = sorted(ours, key=lambda label: tuple(map(int, label.split("-"))))
            diffs = np.array([ours[label] - theirs[label] for label in labels])
            metric = "R²" if case == "diabetes" else "accuracy"
            mean_score = float(np.mean(list(theirs.values())))
            cv = f"{REPEATS[case]}x3-fold CV" if case in REPEATS else "3-fold CV"
            head = f"**{case}**: {what}; 2layer grid (9 points), {epochs} epochs, {cv}, CV {metric}"
            rows = [
                f"| {label} | {ours[label]:.4f} | {theirs[label]:.4f} | {d:+.4f} |"
                for label, d in zip(labels, diffs, strict=True)
            ]
            verdict = ""
            if case in AGREEMENT:
                # Accuracy: an absolute 0.01; R²: 5% of the metric's own size.
                limit = AGREEMENT[case] * (abs(mean_score) if metric == "R²" else 1.0)
                ok = abs(diffs.mean()) <= limit
                verdict = (
                    f" Target: mean difference within {limit:.4f}"
                    f"{' (5% of the mean R²)' if metric == 'R²' else ''}: "
                    f"{'met' if ok else 'NOT met'}."
                )
            summary = (
                f"tuner launch {tuner_wall:.1f} s, GridSearchCV + scikeras {search_wall:.1f} s "
                f"(**{search_wall / tuner_wall:.2f}x**); per-point difference mean "
                f"{diffs.mean():+.4f}, std {diffs.std():.4f}, largest {np.abs(diffs).max():.4f}; "
                f"best: tuner {max(ours.values()):.4f}, GridSearchCV {max(theirs.values()):.4f}."
                + verdict
            )
            section = [
                head + ".\n",
                "| point | tuner | GridSearchCV | difference |",
                "|---|---|---|---|",
                *rows,
                "",
                summary + "\n",
            ]
            print("\n".join(section))
            lines += section
    if args.results:
        with open(args.results, "a") as handle:
            handle.write("\n".join(lines))


if __name__ == "__main__":
    main()
