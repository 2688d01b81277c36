"""Grid packing: many grid points with all their folds trained as one model.

Each point must train exactly as it would alone from the same initial weights and the
same batches: the grid model is checked against the fold-packed model of each point,
and padded units against staying exactly zero.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from tests.helpers import synthetic_images
from tuner.data import DatasetSpec, fold_arrays, load_dataset, stratified_folds
from tuner.data._datasets import DEBIAN_FASHION_MNIST
from tuner.study import BUILTIN_STUDIES_DIR, load_definition, load_definitions
from tuner.training import (
    STRATEGIES,
    FoldTrainer,
    build_model,
    build_packed_model,
    fold_seed,
    initial_weights,
    pack_weights,
    training_loops,
)
from tuner.training._models import (
    GridDense,
    PointDropout,
    build_grid_model,
    dense_weights,
    grid_learning_rate_scales,
    grid_weights,
)

DEFINITIONS = load_definitions(BUILTIN_STUDIES_DIR)
# Layer-1 widths out of order, and two points of one width (a width group with padding).
POINTS = [(32, 8), (16, 16), (8, 4), (16, 4)]
FOLDS = 3


def separate_models(definition, points) -> list[list]:
    return [
        [dense_weights(build_model(definition, units, seed=10 * p + f)) for f in range(FOLDS)]
        for p, units in enumerate(points)
    ]


def data(n: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels = synthetic_images(n, seed=3)
    return images.reshape(n, -1).astype(np.float32) / 255, labels


@pytest.mark.parametrize("variant", ["2layer-no-dropout", "3layer-no-dropout", "2layer-no-bn"])
def test_each_point_trains_exactly_as_alone(variant: str) -> None:
    definition = DEFINITIONS[variant]
    if definition.dropout:
        definition = dataclasses.replace(definition, dropout=0.0)
    points = [tuple(units) + (8,) * (definition.n_layers - 2) for units in POINTS]
    x, y = data(600)
    splits = stratified_folds(y, FOLDS, 0)
    packed = training_loops().packed
    grid = build_grid_model(definition, points, FOLDS)
    grid_weights(grid, separate_models(definition, points), FOLDS)
    together = packed(grid, definition, FOLDS, points=len(points)).fit_folds(
        x, y, splits, epochs=2, seed=5
    )
    assert len(together) == FOLDS * len(points)
    for p, units in enumerate(points):
        alone_model = build_packed_model(definition, units, FOLDS)
        pack_weights(alone_model, separate_models(definition, points)[p])
        alone = packed(alone_model, definition, FOLDS).fit_folds(x, y, splits, epochs=2, seed=5)
        for fold in range(FOLDS):
            mine = together[fold * len(points) + p]
            for key in mine:
                np.testing.assert_allclose(
                    mine[key], alone[fold][key], rtol=5e-4, atol=5e-4, err_msg=f"{units} {key}"
                )


AXES_STUDY = """
[grid]
l1 = [32, 16, 8]
l2 = [8, 16, 4]
learning_rate = [0.0005, 0.001, 0.004]
batch_norm = [true, false]
activation = ["relu", "tanh", "gelu"]

[protocol]
optimizer = "{optimizer}"
"""


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_points_with_their_own_settings_train_exactly_as_alone(tmp_path, optimizer: str) -> None:
    """Learning rate, BatchNorm on/off and activation as per-point data in one grid model:
    each point trains as its own model with its own settings would."""
    path = tmp_path / "axes.toml"
    path.write_text(AXES_STUDY.format(optimizer=optimizer))
    definition = load_definition(path)
    chosen = [
        {"l1": 32, "l2": 8, "learning_rate": 0.004, "batch_norm": True, "activation": "tanh"},
        {"l1": 16, "l2": 16, "learning_rate": 0.0005, "batch_norm": False, "activation": "relu"},
        {"l1": 8, "l2": 4, "learning_rate": 0.001, "batch_norm": True, "activation": "gelu"},
    ]
    settings = [definition.at(params) for params in chosen]
    points = [definition.units_of(params) for params in chosen]
    x, y = data(600)
    splits = stratified_folds(y, FOLDS, 0)
    packed = training_loops().packed
    grid = build_grid_model(definition, points, FOLDS, settings)
    grid_weights(grid, separate_models(definition, points), FOLDS)
    scales = grid_learning_rate_scales(grid, settings, definition.protocol.learning_rate)
    assert scales is not None
    together = packed(
        grid, definition, FOLDS, points=len(points), learning_rate_scales=scales
    ).fit_folds(x, y, splits, epochs=2, seed=5)
    for p, units in enumerate(points):
        alone_model = build_packed_model(settings[p], units, FOLDS)
        pack_weights(alone_model, separate_models(definition, points)[p])
        alone = packed(alone_model, settings[p], FOLDS).fit_folds(x, y, splits, epochs=2, seed=5)
        for fold in range(FOLDS):
            mine = together[fold * len(points) + p]
            for key in mine:
                np.testing.assert_allclose(
                    mine[key], alone[fold][key], rtol=5e-4, atol=5e-4, err_msg=f"{units} {key}"
                )


def test_one_learning_rate_needs_no_scales() -> None:
    definition = DEFINITIONS["2layer-no-dropout"]
    grid = build_grid_model(definition, POINTS[:2], FOLDS)
    assert grid_learning_rate_scales(grid, [definition] * 2, 0.001) is None


def test_point_dropout_drops_each_slot_at_its_own_rate() -> None:
    rates = [0.0, 0.5, 0.9]
    layer = PointDropout(rates, axis=2, seed=1)
    ones = np.ones((4000, 2, 3), np.float32)
    dropped = np.asarray(layer(ones, training=True))
    np.testing.assert_array_equal(dropped[..., 0], 1.0)  # rate 0: exactly unchanged
    for slot, rate in enumerate(rates[1:], start=1):
        kept = dropped[..., slot] > 0
        assert abs(kept.mean() - (1 - rate)) < 0.02, (rate, kept.mean())
        np.testing.assert_allclose(dropped[..., slot][kept], 1 / (1 - rate), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(layer(ones, training=False)), ones)


@pytest.mark.parametrize(
    "change",
    [{}, {"activation": "sigmoid", "batch_norm": False}],  # sigmoid(0) = 0.5: a padded
    ids=["relu-batchnorm", "sigmoid"],  # unit outputs zero only through its unit mask
)
def test_padded_weights_stay_exactly_zero(change: dict) -> None:
    definition = dataclasses.replace(DEFINITIONS["3layer"], **change)
    points = [(32, 8, 4), (16, 16, 8), (16, 8, 2)]
    x, y = data(300)
    grid = build_grid_model(definition, points, FOLDS)
    grid_weights(grid, separate_models(definition, points), FOLDS)
    packed = training_loops().packed
    packed(grid, definition, FOLDS, points=len(points)).fit_folds(
        x, y, stratified_folds(y, FOLDS, 0), epochs=1, seed=1
    )
    # No mask on the kernels: zero gradients alone keep the padding at zero.
    padded_layers = 0
    for layer in grid.layers:
        if isinstance(layer, GridDense):
            kernel, bias = np.asarray(layer.kernel), np.asarray(layer.bias)
            own = np.zeros(kernel.shape, bool)
            for n, (fan_in, fan_out) in enumerate(
                zip(layer.input_widths, layer.output_widths, strict=True)
            ):
                own[n, :fan_in, :fan_out] = True
                assert np.all(bias[n, fan_out:] == 0.0), layer.name
            assert np.all(kernel[~own] == 0.0), layer.name
            assert np.any(kernel[own] != 0.0)
            padded_layers += int(not own.all())
    assert padded_layers >= 2  # a padded output (layer 2) and a padded input (layer 3)


@pytest.mark.heavy  # 95 s: .ci/run's `pytest -m heavy`
@pytest.mark.skipif(
    "KERAS_BACKEND" in __import__("os").environ, reason="already running on a chosen backend"
)
def test_each_point_trains_exactly_as_alone_on_jax(tmp_path) -> None:
    """The same checks, on Keras' JAX backend in a child process without TensorFlow."""
    import os
    import subprocess
    import sys

    pytest.importorskip("jax", reason="the JAX backend needs pip install -e '.[jax]'")
    blocked = tmp_path / "tensorflow"
    blocked.mkdir()
    (blocked / "__init__.py").write_text('raise ImportError("blocked: JAX only")\n')
    environment = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            __file__,
            "-k",
            "not on_jax and not fashion",
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "9 passed" in result.stdout


@pytest.mark.slow
@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="needs dataset-fashion-mnist")
def test_grid_accuracies_agree_with_separate_fits_on_fashion_mnist() -> None:
    """A grid-packed run against each point's folds fitted alone, BatchNorm and Dropout on."""
    dataset = load_dataset(DatasetSpec.parse("fashion-mnist", subset=3000))
    splits = stratified_folds(dataset.y_train, FOLDS, seed=42)
    definition = DEFINITIONS["2layer"]
    points = [(256, 32), (512, 128), (328, 64)]
    seeds = {(units, f): fold_seed(0, units, f) for units in points for f in range(FOLDS)}
    # Dropout layers draw their seeds from Keras' global generator: fixed here, so the
    # masks (and the outcome) do not depend on which tests ran before in this process.
    keras.utils.set_random_seed(7)
    grid = build_grid_model(definition, points, FOLDS)
    grid_weights(
        grid,
        [[initial_weights(definition, u, seeds[u, f]) for f in range(FOLDS)] for u in points],
        FOLDS,
    )
    packed = training_loops().packed
    together = packed(grid, definition, FOLDS, points=len(points)).fit_folds(
        dataset.x_train, dataset.y_train, splits, epochs=4, seed=1
    )
    differences = []
    for p, units in enumerate(points):
        trainer = FoldTrainer(definition, units, STRATEGIES["fast"])
        alone = [
            trainer.train_fold(
                fold_arrays(dataset, splits), split, fold=f, epochs=4, seed=seeds[units, f]
            ).accuracy
            for f, split in enumerate(splits)
        ]
        mine = [together[f * len(points) + p]["val_accuracy"][-1] for f in range(FOLDS)]
        assert min(mine) > 0.6, units
        # Dropout masks and batch orders differ: over five mask seeds one point's mean
        # differed by -0.034 to +0.031 (before and after width groups alike).
        assert abs(np.mean(mine) - np.mean(alone)) < 0.045, (units, mine, alone)
        differences.append(np.mean(mine) - np.mean(alone))
    # No bias across points: over those seeds the mean difference was -0.007 to +0.009.
    assert abs(np.mean(differences)) < 0.015, differences
