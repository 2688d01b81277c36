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
prints the roofline's parts beside the measured step and epoch. Between the two it puts
the batch's *kernel floor*: the same parts timed as TensorFlow's own kernels run them on
exactly the step's shapes here, one after another with nothing between them (each
dense layer's batched matmuls, forward, kernel gradient and input gradient, and its
validation forward; ``ResourceApplyAdam`` on every trainable variable; tuner's BatchNorm
and Dropout layers, forward and backward). The roofline-to-floor ratio is what the
kernels leave on the table at these shapes; the floor-to-step ratio is the trainer's
own composition (transposes, glue ops, scheduling). With ``--run`` it also
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
from tuner.training._models import (  # noqa: E402
    GridBatchNorm,
    PackedDense,
    PointDropout,
    build_grid_model,
    grid_weights,
    initial_weights_of,
)
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


def measure(definition, points, rows: int, epochs: int) -> tuple[float, int, object]:
    """Seconds per epoch of the grid batch (after a warm-up epoch), steps per epoch, and
    the trained grid model."""
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
    return seconds, -(-shortest // definition.protocol.batch_size), model


COPIES = 8
"""Each kernel is timed as this many calls in one compiled function, on as many distinct
inputs: a call's overhead, spread over them, is not counted as the kernel's."""


def _seconds(function, inputs: list, rounds: int = 5) -> float:
    """Best seconds of one of ``function``'s kernels: the compiled function runs its kernel
    once per input (distinct tensors, so none is computed once for all)."""
    function(inputs)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), function(inputs))
        best = min(best, (time.perf_counter() - start) / len(inputs))
    return best


def _copies(shape: tuple[int, ...], count: int = COPIES) -> list:
    return [tf.random.normal(shape) for _ in range(count)]


def _in_turn(kernel, inputs: list) -> list:
    """``kernel`` of each input, one after another (as a step's dependent ops run: left
    independent, the executor would run two at once, each on both cores). Returns one
    element of each output: every kernel must run, and none holds its whole output (one
    held output per kernel would time fresh allocations)."""
    kept: list = []
    for x in inputs:
        with tf.control_dependencies(kept[-1:]):
            outputs = tf.nest.flatten(kernel(x))
        kept.append(tf.add_n([tf.reshape(output, [-1])[0] for output in outputs]))
    return kept


def kernel_floor(model, batch: int, validation_rows: int, steps: int) -> dict[str, float]:
    """Seconds per step if each of the step's kernels ran on its own, one after another,
    at the speed TensorFlow's kernels reach on exactly these shapes on this machine.

    The roofline takes every matmul at the square-matmul peak and every update at the
    memory bandwidth; the kernels do not reach either at these shapes (120 rows per
    model and step). This floor is the step with no transposes, no glue ops and no cost
    between ops, built from the kernels this trainer runs on: the gap from it to the
    measured step is the composition, the gap from the roofline to it is the kernels.
    """
    parts = dict.fromkeys(("flops", "validation", "adam", "batch_norm", "dropout"), 0.0)
    rows = min(validation_rows, 8192)  # the loop validates in chunks of at most 8,192 rows
    for layer in model.layers:
        if isinstance(layer, PackedDense):
            n, fan_in, units = layer.kernel.shape
            kernel = tf.random.normal((n, fan_in, units))
            dy = tf.random.normal((n, batch, units))
            forward = tf.function(lambda xs, k=kernel: _in_turn(lambda x: tf.matmul(x, k), xs))
            kernel_gradient = tf.function(
                lambda xs, dy=dy: _in_turn(lambda x: tf.matmul(x, dy, transpose_a=True), xs)
            )
            parts["flops"] += _seconds(forward, _copies((n, batch, fan_in)))
            parts["flops"] += _seconds(kernel_gradient, _copies((n, batch, fan_in)))
            if type(layer) is not PackedDense:  # layer 1's input needs no gradient
                input_gradient = tf.function(
                    lambda dys, k=kernel: _in_turn(lambda g: tf.matmul(g, k, transpose_b=True), dys)
                )
                parts["flops"] += _seconds(input_gradient, _copies((n, batch, units)))
            chunk = _seconds(forward, _copies((n, rows, fan_in), count=2))  # big: 2 do
            parts["validation"] += chunk * validation_rows / rows / steps
        elif isinstance(layer, (GridBatchNorm, PointDropout)):

            def forward_backward(xs, layer=layer):
                def one(x):
                    with tf.GradientTape() as tape:
                        tape.watch(x)
                        y = layer(x, training=True)
                    return tape.gradient(y, [x, *layer.trainable_variables])

                return _in_turn(one, xs)

            key = "batch_norm" if isinstance(layer, GridBatchNorm) else "dropout"
            shape = (batch, *layer.input.shape[1:])
            parts[key] += _seconds(tf.function(forward_backward), _copies(shape))
    for variable in model.trainable_variables:
        shape = tuple(variable.shape)
        var, m, v = (tf.Variable(tf.zeros(shape)) for _ in range(3))

        def updates(gradients, var=var, m=m, v=v):
            for gradient in gradients:  # one after another: each reads the last's writes
                tf.raw_ops.ResourceApplyAdam(
                    var=var.handle, m=m.handle, v=v.handle, grad=gradient, beta1_power=0.9,
                    beta2_power=0.999, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7,
                )  # fmt: skip
            return tf.constant(0.0)

        parts["adam"] += _seconds(tf.function(updates), _copies(shape))
    return parts


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
        "| batch | per step | dense | validation | Adam | BatchNorm | Dropout | step "
        "| x roofline |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    runs: list[str] = []  # whole-run lines, after the table
    for variant in variants:
        definition = definitions[variant]
        # The first batch a claim takes: up to --pack points, lowest grid id first.
        table = grid_params(definition)[:DEFAULT_PACK]
        points = [definition.units_of(params) for params in table]
        epoch, steps, model = measure(definition, points, args.rows, args.epochs)
        batch = definition.protocol.batch_size
        validation_rows = args.rows / (FOLDS - 1) / steps  # a fold's, per step
        parts = roofline(definition, points, batch, validation_rows)
        ms = {
            "dense": parts["flops"] / peak / 1e6,
            "validation": parts["validation"] / peak / 1e6,
            **{k: parts[k] / bandwidth / 1e6 for k in ("adam", "batch_norm", "dropout")},
        }
        ideal = sum(ms.values())
        step = epoch / steps * 1000
        floor_parts = kernel_floor(model, batch, args.rows // (FOLDS - 1), steps)
        floor_ms = {key: seconds * 1000 for key, seconds in floor_parts.items()}
        floor = sum(floor_ms.values())
        print(
            f"{variant} ({len(points)} points x 3 folds): roofline {ideal:.1f} ms/step "
            f"(dense {ms['dense']:.1f}, validation {ms['validation']:.1f}, Adam "
            f"{ms['adam']:.1f}, BatchNorm {ms['batch_norm']:.1f}, Dropout "
            f"{ms['dropout']:.1f}); kernel floor {floor:.1f} ms/step = {floor / ideal:.2f}x "
            f"(dense {floor_ms['flops']:.1f}, validation {floor_ms['validation']:.1f}, Adam "
            f"{floor_ms['adam']:.1f}, BatchNorm {floor_ms['batch_norm']:.1f}, Dropout "
            f"{floor_ms['dropout']:.1f}); measured {step:.1f} ms/step = {step / ideal:.2f}x "
            f"the roofline, {step / floor:.2f}x the kernel floor; epoch {epoch:.2f} s "
            f"({steps} steps)"
        )
        for what, row, total in (
            ("roofline", ms, ideal),
            ("kernel floor", {**floor_ms, "dense": floor_ms["flops"]}, floor),
        ):
            cells = " | ".join(
                f"{row[key]:.1f} ms"
                for key in ("dense", "validation", "adam", "batch_norm", "dropout")
            )
            lines.append(
                f"| {variant} ({len(points)} x 3) | {what} | {cells} | {total:.1f} ms "
                f"| {total / ideal:.2f}x |"
            )
        lines.append(
            f"| {variant} ({len(points)} x 3) | **measured** (epoch {epoch:.2f} s) "
            f"| | | | | | {step:.1f} ms | **{step / ideal:.2f}x** |"
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
