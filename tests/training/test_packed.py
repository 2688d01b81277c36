"""Packed folds against separate fits, with real TensorFlow."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from tests.helpers import synthetic_images
from tuner.data import DatasetSpec, fold_arrays, load_dataset, stratified_folds
from tuner.data._datasets import DEBIAN_FASHION_MNIST
from tuner.study import BUILTIN_STUDIES_DIR, load_definitions
from tuner.training import (
    STRATEGIES,
    FoldTrainer,
    PackedDense,
    TFFoldLoop,
    TFPackedLoop,
    build_model,
    build_packed_model,
    dense_weights,
    pack_weights,
)

DEFINITIONS = load_definitions(BUILTIN_STUDIES_DIR)


def test_one_packed_step_equals_separate_steps_per_fold() -> None:
    """Each weight slice gets exactly its own fold's update, BatchNorm included."""
    definition = dataclasses.replace(DEFINITIONS["2layer"], dropout=0.0)
    images, labels = synthetic_images(240, seed=0)
    x = images.reshape(240, 784).astype(np.float32) / 255
    y = labels.astype(np.int32)
    # Two folds, each exactly one batch of 120, so shuffling cannot change the batch.
    splits = [(np.arange(120), np.arange(120)), (np.arange(120, 240), np.arange(120, 240))]
    separate = [build_model(definition, (32, 16), seed=s) for s in (1, 2)]
    packed = build_packed_model(definition, (32, 16), 2)
    pack_weights(packed, [dense_weights(model) for model in separate])
    TFPackedLoop(packed, definition, 2).fit_folds(x, y, splits, epochs=1, seed=0)
    for index, (model, (train, _)) in enumerate(zip(separate, splits, strict=True)):
        TFFoldLoop(model, definition.protocol).fit(
            x[train], y[train], epochs=1, validation=(x[:10], y[:10]), seed=0
        )
        dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
        packed_dense = [layer for layer in packed.layers if isinstance(layer, PackedDense)]
        for alone, together in zip(dense, packed_dense, strict=True):
            np.testing.assert_allclose(
                np.asarray(together.kernel)[index], np.asarray(alone.kernel), atol=5e-5
            )
            np.testing.assert_allclose(
                np.asarray(together.bias)[index], np.asarray(alone.bias), atol=5e-5
            )


def test_batchnorm_statistics_stay_per_fold() -> None:
    packed = build_packed_model(DEFINITIONS["2layer"], (32, 16), 3)
    norms = [layer for layer in packed.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert [tuple(layer.moving_mean.shape) for layer in norms] == [(96,), (48,)]


@pytest.mark.slow
@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="needs dataset-fashion-mnist")
def test_packed_fold_accuracies_agree_with_separate_fits() -> None:
    dataset = load_dataset(DatasetSpec.parse("fashion-mnist", subset=3000))
    folds = stratified_folds(dataset.y_train, 3, seed=42)
    definition = DEFINITIONS["2layer"]
    separate = FoldTrainer(definition, (256, 64), STRATEGIES["fast"])
    alone = [
        separate.train_fold(fold_arrays(dataset, folds), split, fold=f, epochs=4, seed=f).accuracy
        for f, split in enumerate(folds)
    ]
    together = FoldTrainer(definition, (256, 64), STRATEGIES["packed"]).train_packed(
        fold_arrays(dataset, folds), dict(enumerate(folds)), epochs=4, base_seed=0
    )
    packed = [together[f].accuracy for f in range(3)]
    assert min(packed) > 0.6
    # Fold-to-fold spread here is about 0.01; the means must agree within noise.
    assert abs(np.mean(packed) - np.mean(alone)) < 0.03
    assert all(len(together[f].history["val_loss"]) == 4 for f in range(3))
