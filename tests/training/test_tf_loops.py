"""The fast trainer against Keras itself, with real TensorFlow."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import synthetic_images
from tuner.data import DatasetSpec, fold_arrays, load_dataset, stratified_folds
from tuner.data._datasets import DEBIAN_FASHION_MNIST
from tuner.study import BUILTIN_STUDIES_DIR, load_definitions
from tuner.training import STRATEGIES, FoldTrainer, TFFoldLoop, build_model

DEFINITIONS = load_definitions(BUILTIN_STUDIES_DIR)


def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels = synthetic_images(n, seed)
    return images.reshape(n, 784).astype(np.float32) / 255, labels.astype(np.int32)


def test_fused_adam_step_equals_keras_adam_step() -> None:
    definition = dataclasses.replace(DEFINITIONS["2layer"], dropout=0.0)
    x, y = data(120, seed=0)  # exactly one batch, so the order does not matter
    fast_model = build_model(definition, (64, 32), seed=5)
    keras_model = build_model(definition, (64, 32), seed=5)
    start = keras_model.get_weights()
    TFFoldLoop(fast_model, definition.protocol).fit(x, y, epochs=1, validation=(x, y), seed=0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(y, keras_model(x, training=True))
        )
    variables = keras_model.trainable_variables
    keras_model.optimizer.apply(tape.gradient(loss, variables), variables)
    # A first Adam step moves every weight by about lr = 1e-3; where the gradient is ~0
    # float noise may flip its direction, so the check is far below the step size.
    moved = [
        np.abs(after - before).max()
        for after, before in zip(keras_model.get_weights(), start, strict=True)
    ]
    assert max(moved) > 5e-4
    for fast, reference in zip(fast_model.get_weights(), keras_model.get_weights(), strict=True):
        np.testing.assert_allclose(fast, reference, atol=5e-5)


def test_reset_makes_fits_repeatable_and_independent() -> None:
    definition = dataclasses.replace(DEFINITIONS["2layer-no-bn"], dropout=0.0)
    x, y = data(360, seed=1)
    model = build_model(definition, (32, 16), seed=2)
    start = model.get_weights()
    trainer = TFFoldLoop(model, definition.protocol)
    first = trainer.fit(x, y, epochs=3, validation=(x, y), seed=7)
    trainer.reset(start)
    again = trainer.fit(x, y, epochs=3, validation=(x, y), seed=7)
    assert set(first) == set(again)
    for key in first:
        np.testing.assert_allclose(first[key], again[key], rtol=1e-5, err_msg=key)
    assert first["loss"][-1] < first["loss"][0]
    assert set(first) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(curve) == 3 for curve in first.values())


def test_reported_metrics_match_an_independent_evaluation() -> None:
    definition = DEFINITIONS["2layer"]
    x, y = data(300, seed=3)
    xv, yv = data(100, seed=4)
    model = build_model(definition, (32, 16), seed=2)
    history = TFFoldLoop(model, definition.protocol).fit(
        x, y, epochs=2, validation=(xv, yv), seed=0
    )
    loss, accuracy = model.evaluate(xv, yv, verbose=0)
    assert history["val_loss"][-1] == pytest.approx(loss, rel=1e-4)
    assert history["val_accuracy"][-1] == pytest.approx(accuracy, abs=1e-6)


@pytest.mark.slow
@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="needs dataset-fashion-mnist")
def test_fast_and_keras_trainers_agree_on_real_data() -> None:
    """Same folds, same initial weights: fold accuracies agree within training noise."""
    dataset = load_dataset(DatasetSpec.parse("fashion-mnist", subset=3000))
    folds = stratified_folds(dataset.y_train, 3, seed=42)
    definition = DEFINITIONS["2layer"]
    scores = {}
    for kind in ("fast", "keras"):
        trainer = FoldTrainer(definition, (256, 64), STRATEGIES[kind])
        scores[kind] = [
            trainer.train_fold(
                fold_arrays(dataset, folds), split, fold=f, epochs=4, seed=f
            ).accuracy
            for f, split in enumerate(folds)
        ]
    assert min(scores["fast"]) > 0.6 and min(scores["keras"]) > 0.6
    assert abs(np.mean(scores["fast"]) - np.mean(scores["keras"])) < 0.03
