"""tuner vs the original study's method on the same grid, data, folds, epochs and batch.

The original ran scikit-learn's ``GridSearchCV(cv=3)`` over a Keras classifier; its
modern form is ``GridSearchCV`` over a scikeras ``KerasClassifier``. Both runs here use
the same 3 folds (tuner's stratified split), the same model builder and the same
protocol, one after the other in one process. Printed: wall time of each and the ratio,
every grid point's mean CV accuracy under both, and tuner's achieved training GFLOP/s
against this machine's fp32 matmul peak, measured in the same run.

    python bench/compare_gridsearch.py                   # 2layer, 6,000 images, 4 epochs
    python bench/compare_gridsearch.py --full            # 60,000 images, 20 epochs (hours)
    python bench/compare_gridsearch.py --results bench/RESULTS.md
    python bench/compare_gridsearch.py --studies bench/studies --variant lr-dropout  # axes

Needs the bench extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from tuner.training import import_backend_quietly

import_backend_quietly()

import optuna  # noqa: E402
import tensorflow as tf  # noqa: E402

from tuner.api import DEFAULT_PACK  # noqa: E402
from tuner.data import (  # noqa: E402
    N_CLASSES,
    N_PIXELS,
    DatasetSpec,
    load_dataset,
    stratified_folds,
)
from tuner.scheduling import GridScheduler, TrialRunner  # noqa: E402
from tuner.storages import open_storage  # noqa: E402
from tuner.study import (  # noqa: E402
    PACKED_AXES,
    StudyConfig,
    StudyDefinition,
    create_or_resume,
    load_definitions,
)
from tuner.training import (  # noqa: E402
    STRATEGY_NAMES,
    CrossValidation,
    TFFoldLoop,
    build_model,
    training_strategy,
)


def units_in(label: str, definition: StudyDefinition) -> tuple[int, ...]:
    """The widths a point label (``l1=512 l2=64 ...``) names."""
    values = dict(part.split("=") for part in label.split())
    return tuple(int(values[name]) for name in definition.layer_names)


def matmul_flops(units: tuple[int, ...]) -> int:
    dims = [N_PIXELS, *units, N_CLASSES]
    return sum(a * b for a, b in itertools.pairwise(dims))


def training_flops(units: tuple[int, ...], n_train: int, n_val: int, epochs: int) -> float:
    """Dense-layer FLOPs: 6 per weight per training sample (forward 2, backward 4),
    2 per weight per validation sample."""
    return float(epochs * matmul_flops(units) * (6 * n_train + 2 * n_val))


def fp32_matmul_peak(seconds: float = 3.0) -> float:
    """Best GFLOP/s of a large square fp32 matmul: the machine's practical peak."""
    a = tf.random.normal((2048, 2048))
    b = tf.random.normal((2048, 2048))
    product = tf.function(tf.matmul)
    product(a, b).numpy()
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(5):
            result = product(a, b)
        result.numpy()
        best = max(best, 5 * 2 * 2048**3 / (time.perf_counter() - start) / 1e9)
    return best


def run_tuner(definition: StudyDefinition, spec: DatasetSpec, epochs: int, trainer: str):
    dataset = load_dataset(spec)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        storage = open_storage(url)
        config = StudyConfig(definition.name, definition, spec, dataset.fingerprint(), epochs)
        study = create_or_resume(storage, config)
        start = time.perf_counter()
        folds = stratified_folds(dataset.y_train, definition.protocol.folds, config.fold_seed)
        evaluate = CrossValidation(
            definition,
            dataset,
            folds,
            epochs=epochs,
            base_seed=config.fold_seed,
            device="CPU:0",
            strategy=training_strategy(trainer),
        )
        together = training_strategy(trainer).trains_together
        TrialRunner(
            GridScheduler(storage, url, study, definition),
            evaluate,
            evaluate_batch=evaluate.evaluate_batch if together else None,
            claim_size=DEFAULT_PACK if together else 1,
        ).run()
        wall = time.perf_counter() - start
        trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    scores = {definition.point_label(t.params): t.value for t in trials}
    train_seconds = sum(t.user_attrs["train_seconds"] for t in trials)
    return wall, scores, train_seconds


def run_gridsearch(definition: StudyDefinition, spec: DatasetSpec, epochs: int, seed: int):
    from scikeras.wrappers import KerasClassifier
    from sklearn.model_selection import GridSearchCV

    dataset = load_dataset(spec)
    folds = stratified_folds(dataset.y_train, 3, seed)
    space = {**definition.grid, **definition.axes}
    if set(definition.axes) - PACKED_AXES:
        raise SystemExit("GridSearchCV here varies only model settings and the learning rate")

    def model(**params: Any):
        # Each point's own settings (its learning rate, Dropout rate...), as tuner's.
        return build_model(definition.at(params), definition.units_of(params))

    classifier = KerasClassifier(
        model=model,
        **{f"model__{name}": values[0] for name, values in space.items()},
        loss="sparse_categorical_crossentropy",
        epochs=epochs,
        batch_size=definition.protocol.batch_size,
        verbose=0,
    )
    search = GridSearchCV(
        classifier,
        {f"model__{name}": list(values) for name, values in space.items()},
        cv=folds,
        scoring="accuracy",
        refit=False,
        n_jobs=1,
    )
    start = time.perf_counter()
    search.fit(dataset.x_train, dataset.y_train)
    wall = time.perf_counter() - start
    results = search.cv_results_
    scores = {
        definition.point_label({name: params[f"model__{name}"] for name in space}): float(score)
        for params, score in zip(results["params"], results["mean_test_score"], strict=True)
    }
    return wall, scores


def steady_epoch(
    definition: StudyDefinition, units: tuple[int, ...], n: int
) -> tuple[float, float]:
    """Seconds per training epoch after warm-up (fast trainer), and its GFLOP/s."""
    rng = np.random.default_rng(0)
    x = rng.random((n, N_PIXELS), dtype=np.float32)
    y = rng.integers(0, N_CLASSES, n).astype(np.int32)
    trainer = TFFoldLoop(build_model(definition, units, seed=0), definition.protocol)
    trainer.fit(x, y, epochs=1, validation=(x[:10], y[:10]), seed=0)
    start = time.perf_counter()
    trainer.fit(x, y, epochs=3, validation=(x[:10], y[:10]), seed=0)
    seconds = (time.perf_counter() - start) / 3
    return seconds, 6 * n * matmul_flops(units) / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="2layer")
    parser.add_argument("--studies", type=Path, help="folder of definitions (default: tuner's)")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--subset", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--full", action="store_true", help="all images, 20 epochs")
    parser.add_argument("--trainer", default=STRATEGY_NAMES[0], choices=STRATEGY_NAMES)
    parser.add_argument("--results", type=Path, help="append a Markdown section here")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    definition = load_definitions(args.studies)[args.variant]
    subset, epochs = (None, 20) if args.full else (args.subset, args.epochs)
    spec = DatasetSpec.parse(args.dataset, subset)
    definition = replace(definition, protocol=replace(definition.protocol, epochs=epochs))
    n = len(load_dataset(spec).y_train)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    print(
        f"{args.variant}: {definition.grid_size} points, {n} images, {epochs} epochs, "
        f"batch {definition.protocol.batch_size}, 3 folds; {machine}; TF {tf.__version__}"
    )

    peak = fp32_matmul_peak()
    print(f"fp32 matmul peak (2048^3): {peak:.0f} GFLOP/s")
    tuner_wall, tuner_scores, train_seconds = run_tuner(definition, spec, epochs, args.trainer)
    print(f"tuner ({args.trainer} trainer): {tuner_wall:.1f} s")
    search_wall, search_scores = run_gridsearch(definition, spec, epochs, seed=42)
    print(f"GridSearchCV + scikeras: {search_wall:.1f} s")
    ratio = search_wall / tuner_wall
    print(f"speed-up: {ratio:.2f}x")

    n_val = n // 3
    folds = definition.protocol.folds
    units_of = {label: units_in(label, definition) for label in tuner_scores}
    flops = folds * sum(
        training_flops(units_of[label], n - n_val, n_val, epochs) for label in tuner_scores
    )
    achieved = flops / train_seconds / 1e9
    best_units = units_of[max(tuner_scores, key=tuner_scores.__getitem__)]
    epoch_seconds, epoch_gflops = steady_epoch(definition, best_units, n - n_val)
    print(
        f"tuner training: {achieved:.0f} GFLOP/s over whole trials = {achieved / peak:.0%} of "
        f"peak; steady-state one-fold epoch (fast trainer) of {best_units}: "
        f"{epoch_seconds * 1000:.0f} ms, "
        f"{epoch_gflops:.0f} GFLOP/s = {epoch_gflops / peak:.0%} of peak"
    )

    rows = []
    print(f"{'point':>12} {'tuner':>8} {'sklearn':>8} {'diff':>8}")
    for label in sorted(tuner_scores):
        a, b = tuner_scores[label], search_scores[label]
        rows.append((label, a, b))
        print(f"{label:>12} {a:8.4f} {b:8.4f} {a - b:+8.4f}")
    diffs = np.array([a - b for _, a, b in rows])
    best_gap = max(tuner_scores.values()) - max(search_scores.values())
    print(
        f"best CV accuracy: tuner {max(tuner_scores.values()):.4f}, GridSearchCV "
        f"{max(search_scores.values()):.4f} (difference {best_gap:+.4f}); per-point "
        f"difference mean {diffs.mean():+.4f}, std {diffs.std():.4f}"
    )

    if args.results:
        lines = [
            f"\n### {args.variant}, {n} images, {epochs} epochs ({time.strftime('%Y-%m-%d')})\n",
            f"Machine: {machine}, TensorFlow {tf.__version__}; fp32 matmul peak "
            f"{peak:.0f} GFLOP/s.\n",
            "| run | wall time | best CV accuracy |",
            "|---|---|---|",
            f"| tuner ({args.trainer} trainer) | {tuner_wall:.1f} s | "
            f"{max(tuner_scores.values()):.4f} |",
            f"| GridSearchCV + scikeras | {search_wall:.1f} s | "
            f"{max(search_scores.values()):.4f} |",
            f"\nSpeed-up **{ratio:.2f}x**. Training throughput over whole trials "
            f"{achieved:.0f} GFLOP/s ({achieved / peak:.0%} of peak); steady-state one-fold "
            f"epoch (fast trainer) of "
            f"{best_units}: {epoch_seconds * 1000:.0f} ms = {epoch_gflops:.0f} GFLOP/s "
            f"({epoch_gflops / peak:.0%} of peak).\n",
            "| point | tuner | GridSearchCV | difference |",
            "|---|---|---|---|",
            *[f"| {label} | {a:.4f} | {b:.4f} | {a - b:+.4f} |" for label, a, b in rows],
            f"\nPer-point difference: mean {diffs.mean():+.4f}, std {diffs.std():.4f}.\n",
        ]
        with open(args.results, "a") as handle:
            handle.write("\n".join(lines))


if __name__ == "__main__":
    main()
