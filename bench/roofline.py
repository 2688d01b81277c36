"""The CPU roofline of a packed grid batch, beside its measured step, epoch and run.

For one grid batch (the first ``--pack`` points of a variant's grid, 3 folds each, as
``tuner launch`` packs it), a perfect implementation on this machine needs, per training step:

* the dense FLOPs of the batch's *useful* work (no padding: 2 per weight per sample
  forward, 4 backward) at the fp32 matmul peak measured here (best square matmul);
* the step's share of the epoch's validation pass (2 FLOPs per weight per validation
  row, forward only), at the same peak: the measured step is an epoch over its steps,
  and the protocol validates every epoch;
* the bytes Adam must move (read weight, gradient and both moments, write weight and
  both moments: 28 bytes per trainable value) at the memory bandwidth measured here;
* the bytes BatchNorm must move (forward: read the pre-activation twice, for the
  statistics and to normalise, write the output; backward: read the output gradient and
  the input twice, write the input gradient: 7 passes of 4 bytes per unit and row);
* the bytes Dropout must move (its mask, one byte per unit and row, written forward and
  read backward: 2 bytes), each counted separately.

The script measures the peak and the bandwidth, trains the batch with tuner's own grid
model and TensorFlow loop on random data (one warm-up epoch, then timed epochs), and
prints the roofline's parts beside the measured step and epoch. With ``--run`` it also
times the whole ``tuner launch`` of that variant in a fresh process (validation, set-up
and compiles included) and gives its GFLOP/s against the peak.

    python bench/roofline.py                          # 2layer and 5layer batches
    python bench/roofline.py --variant 2layer --run   # plus the whole run, 12,000 images
    python bench/roofline.py --results bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from tuner.training import import_backend_quietly

import_backend_quietly()

import tensorflow as tf  # noqa: E402

from tuner.api import DEFAULT_PACK  # noqa: E402
from tuner.data import N_CLASSES, N_PIXELS  # noqa: E402
from tuner.study import grid_params, load_definitions  # noqa: E402
from tuner.training._models import build_grid_model, grid_weights, initial_weights_of  # noqa: E402
from tuner.training._tf_loops import TFPackedLoop  # noqa: E402

FOLDS = 3
ADAM_BYTES = 28
BATCH_NORM_BYTES = 28
DROPOUT_BYTES = 2


def matmul_peak(seconds: float = 2.0) -> float:
    """Best GFLOP/s of square fp32 matmuls (1024, 2048 and 4096)."""
    best = 0.0
    for size in (1024, 2048, 4096):
        a, b = tf.random.normal((size, size)), tf.random.normal((size, size))
        product = tf.function(tf.matmul)
        product(a, b).numpy()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            for _ in range(3):
                result = product(a, b)
            result.numpy()
            best = max(best, 3 * 2 * size**3 / (time.perf_counter() - start) / 1e9)
    return best


def memory_bandwidth(seconds: float = 3.0) -> float:
    """Best GB/s of an in-place ``v += w`` over 64 Mi floats (read 2, write 1), on all
    threads, as Adam's fused update runs (a fresh output would time page faults)."""
    size = 64 * 2**20
    v, w = tf.Variable(tf.zeros((size,))), tf.random.normal((size,))
    add = tf.function(lambda: v.assign_add(w), autograph=False)
    add()
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        add()
        v[0].numpy()
        best = max(best, 3 * 4 * size / (time.perf_counter() - start) / 1e9)
    return best


def roofline(
    definition, points: list[tuple[int, ...]], batch: int, validation_rows: float
) -> dict[str, float]:
    """FLOPs and bytes per training step of a perfect implementation of the batch.

    ``validation_rows``: the rows per fold each step's share of the epoch's validation
    pass forwards (a fold's validation rows over the epoch's steps): the protocol records
    every epoch's validation accuracy, so the measured step (an epoch over its steps)
    holds it, and so does the roofline, as its own part.
    """
    flops = validate = adam = norm = drop = 0.0
    for units in points:
        dims = [N_PIXELS, *units, N_CLASSES]
        weights = sum(a * b for a, b in itertools.pairwise(dims))
        flops += FOLDS * 6 * weights * batch
        validate += FOLDS * 2 * weights * validation_rows
        hidden = sum(units)
        values = weights + sum(dims[1:]) + (2 * hidden if definition.batch_norm else 0)
        adam += FOLDS * ADAM_BYTES * values
        if definition.batch_norm:
            norm += FOLDS * BATCH_NORM_BYTES * hidden * batch
        if definition.dropout > 0:
            drop += FOLDS * DROPOUT_BYTES * hidden * batch
    return {
        "flops": flops,
        "validation": validate,
        "adam": adam,
        "batch_norm": norm,
        "dropout": drop,
    }


def measure(definition, points, rows: int, epochs: int) -> tuple[float, int]:
    """Seconds per epoch of the grid batch (after a warm-up epoch), and steps per epoch."""
    rng = np.random.default_rng(0)
    n = rows * FOLDS // (FOLDS - 1)
    x = rng.random((n, N_PIXELS), dtype=np.float32)
    y = rng.integers(0, N_CLASSES, n).astype(np.int32)
    order = rng.permutation(n)
    splits = [(np.setdiff1d(order, part), part) for part in np.array_split(order, FOLDS)]
    model = build_grid_model(definition, points, FOLDS)
    every = [(units, f) for units in points for f in range(FOLDS)]
    weights = initial_weights_of(definition, [u for u, _ in every], [7 * f for _, f in every])
    grid_weights(model, [weights[p * FOLDS : (p + 1) * FOLDS] for p in range(len(points))], FOLDS)
    loop = TFPackedLoop(model, definition, FOLDS, points=len(points))
    loop.fit_folds(x, y, splits, epochs=1, seed=0)
    started = time.perf_counter()
    loop.fit_folds(x, y, splits, epochs=epochs, seed=1)
    seconds = (time.perf_counter() - started) / epochs
    shortest = min(len(train) for train, _ in splits)
    return seconds, -(-shortest // definition.protocol.batch_size)


def whole_run(variant: str, subset: int, epochs: int) -> float:
    """Wall seconds of ``tuner launch`` of the variant in a fresh process."""
    with tempfile.TemporaryDirectory() as folder:
        command = [
            sys.executable, "-m", "tuner", "launch", "--variant", variant,
            "--dataset", "fashion-mnist", "--subset", str(subset), "--epochs", str(epochs),
            "--storage", f"sqlite:///{folder}/run.db", "--no-report",
        ]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=folder)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", action="append", help="default: 2layer and 5layer")
    parser.add_argument("--rows", type=int, default=8000, help="training rows per fold")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs")
    parser.add_argument("--run", action="store_true", help="also time the whole tuner launch")
    parser.add_argument("--run-subset", type=int, default=12000)
    parser.add_argument("--run-epochs", type=int, default=10)
    parser.add_argument("--results", type=Path, help="append a Markdown section here")
    args = parser.parse_args()
    variants = args.variant or ["2layer", "5layer"]
    definitions = load_definitions()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}"
    peak, bandwidth = matmul_peak(), memory_bandwidth()
    print(f"{machine}: fp32 matmul peak {peak:.0f} GFLOP/s, memory {bandwidth:.1f} GB/s")
    lines = [
        f"\n### Roofline of the grid batch ({time.strftime('%Y-%m-%d')}; {machine})\n",
        f"`python bench/roofline.py`: fp32 matmul peak {peak:.0f} GFLOP/s, memory bandwidth "
        f"{bandwidth:.1f} GB/s (measured in the same run); {args.rows} training rows per "
        "fold, 3 folds, random data, TensorFlow grid loop.\n",
        "| batch | dense | validation | Adam | BatchNorm | Dropout | roofline step "
        "| measured step | ratio | epoch |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    runs: list[str] = []  # whole-run lines, after the table
    for variant in variants:
        definition = definitions[variant]
        # The first batch a claim takes: up to --pack points, lowest grid id first.
        table = grid_params(definition)[:DEFAULT_PACK]
        points = [definition.units_of(params) for params in table]
        epoch, steps = measure(definition, points, args.rows, args.epochs)
        validation_rows = args.rows / (FOLDS - 1) / steps  # a fold's, per step
        parts = roofline(definition, points, definition.protocol.batch_size, validation_rows)
        ms = {
            "dense": parts["flops"] / peak / 1e6,
            "validation": parts["validation"] / peak / 1e6,
            **{k: parts[k] / bandwidth / 1e6 for k in ("adam", "batch_norm", "dropout")},
        }
        ideal = sum(ms.values())
        step = epoch / steps * 1000
        print(
            f"{variant} ({len(points)} points x 3 folds): roofline {ideal:.1f} ms/step "
            f"(dense {ms['dense']:.1f}, validation {ms['validation']:.1f}, Adam "
            f"{ms['adam']:.1f}, BatchNorm {ms['batch_norm']:.1f}, Dropout "
            f"{ms['dropout']:.1f}); measured {step:.1f} ms/step = {step / ideal:.2f}x; "
            f"epoch {epoch:.2f} s ({steps} steps)"
        )
        lines.append(
            f"| {variant} ({len(points)} x 3) | {ms['dense']:.1f} ms | "
            f"{ms['validation']:.1f} ms | {ms['adam']:.1f} ms | "
            f"{ms['batch_norm']:.1f} ms | {ms['dropout']:.1f} ms | {ideal:.1f} ms | "
            f"{step:.1f} ms | **{step / ideal:.2f}x** | {epoch:.2f} s |"
        )
        if args.run:
            wall = whole_run(variant, args.run_subset, args.run_epochs)
            n_val = args.run_subset // FOLDS
            n_train = args.run_subset - n_val
            work = 0.0
            for params in grid_params(definition):  # every point of the run
                units = definition.units_of(params)
                dims = [N_PIXELS, *units, N_CLASSES]
                weights = sum(a * b for a, b in itertools.pairwise(dims))
                work += FOLDS * args.run_epochs * weights * (6 * n_train + 2 * n_val)
            rate = work / wall / 1e9
            print(
                f"{variant}: tuner launch, {args.run_subset} images, {args.run_epochs} epochs: "
                f"{wall:.1f} s, {rate:.0f} GFLOP/s = {rate / peak:.0%} of peak"
            )
            runs.append(
                f"\nWhole `tuner launch --variant {variant} --subset {args.run_subset} "
                f"--epochs {args.run_epochs}`: {wall:.1f} s, {rate:.0f} GFLOP/s = "
                f"{rate / peak:.0%} of peak.\n"
            )
    if args.results:
        with open(args.results, "a") as handle:
            handle.write("\n".join(lines + runs) + "\n")


if __name__ == "__main__":
    main()
