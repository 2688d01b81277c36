"""Packed folds: a grid point's k folds trained as one model with k independent weight sets.

At batch 120 the study's MLPs are so small that the fixed cost of each TensorFlow op
(BatchNorm's moments, Dropout's mask, Adam's update) weighs as much as the arithmetic.
Packing the folds makes every op do k times the work for one op's cost:

* dense layers hold a ``(k, inputs, units)`` kernel and multiply with one batched
  ``einsum``; each fold's slice starts from exactly the weights a separate fit would;
* BatchNorm normalises a ``(batch, k * units)`` view, so its statistics stay per fold
  and per unit, as in separate models; Dropout masks are independent anyway;
* the loss is the sum of the folds' mean losses, so each weight slice gets exactly its
  own fold's gradient, and Adam, being element-wise, updates each slice as alone.

What differs from separate fits: each step draws one batch from every fold, so folds
are cut to the shortest fold's size (at most one sample per epoch left out, a different
one each epoch). ``tests/test_packed.py`` checks fold accuracies agree with separate fits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from tuner.data import N_CLASSES, N_PIXELS
from tuner.definitions import StudyDefinition
from tuner.trainer import FastTrainer

EpochCallback = Callable[[int, dict[str, float]], None]


class PackedDense(layers.Layer):
    """k independent Dense layers applied to the k slices of a ``(batch, k, inputs)`` input."""

    def __init__(self, packs: int, units: int, activation: str | None = None, **kwargs: object):
        super().__init__(**kwargs)
        self.packs, self.units = packs, units
        self.activation = keras.activations.get(activation)

    def build(self, input_shape: tuple[int, ...]) -> None:
        self.kernel = self.add_weight(
            name="kernel", shape=(self.packs, input_shape[-1], self.units), initializer="zeros"
        )
        self.bias = self.add_weight(
            name="bias", shape=(self.packs, self.units), initializer="zeros"
        )

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return self.activation(ops.einsum("bpi,pio->bpo", inputs, self.kernel) + self.bias)


def build_packed_model(definition: StudyDefinition, units: Sequence[int], packs: int):
    inputs = keras.Input(shape=(packs, N_PIXELS))
    hidden = inputs
    for width in units:
        hidden = PackedDense(packs, width, "relu")(hidden)
        if definition.batch_norm:
            hidden = layers.Reshape((packs * width,))(hidden)
            hidden = layers.BatchNormalization()(hidden)
            hidden = layers.Reshape((packs, width))(hidden)
        if definition.dropout > 0:
            hidden = layers.Dropout(definition.dropout)(hidden)
    outputs = PackedDense(packs, N_CLASSES, "softmax")(hidden)
    return keras.Model(inputs, outputs)


def pack_weights(packed: keras.Model, separate: Sequence[keras.Model]) -> None:
    """Copy each separately initialised model into its slice of the packed one."""
    dense = [layer for layer in packed.layers if isinstance(layer, PackedDense)]
    for position, layer in enumerate(dense):
        sources = [
            [lay for lay in model.layers if isinstance(lay, keras.layers.Dense)][position]
            for model in separate
        ]
        layer.kernel.assign(np.stack([np.asarray(s.kernel) for s in sources]))
        layer.bias.assign(np.stack([np.asarray(s.bias) for s in sources]))


class PackedTrainer(FastTrainer):
    """The fast trainer's loop and fused Adam, over k folds at once."""

    def __init__(self, model: keras.Model, definition: StudyDefinition, packs: int) -> None:
        self.packs = packs
        super().__init__(model, definition.protocol)

    def _epoch_graph(self, x: tf.Tensor, y: tf.Tensor, order: tf.Tensor) -> tuple[tf.Tensor, ...]:
        # order: (m, k) row indices into x, one column per fold.
        m = tf.shape(order)[0]
        batch = self.protocol.batch_size
        loss_sum = tf.zeros((self.packs,))
        correct = tf.zeros((self.packs,))
        for i in tf.range((m + batch - 1) // batch):
            index = order[i * batch : tf.minimum((i + 1) * batch, m)]
            x_batch, y_batch = tf.gather(x, index), tf.gather(y, index)
            with tf.GradientTape() as tape:
                probabilities = self.model(x_batch, training=True)
                per_fold = tf.reduce_mean(
                    keras.losses.sparse_categorical_crossentropy(y_batch, probabilities), axis=0
                )
                loss = tf.reduce_sum(per_fold)
            self._apply(tape.gradient(loss, self.variables))
            size = tf.cast(tf.shape(index)[0], tf.float32)
            loss_sum += per_fold * size
            predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
            correct += tf.reduce_sum(tf.cast(tf.equal(predicted, y_batch), tf.float32), axis=0)
        total = tf.cast(m, tf.float32)
        return loss_sum / total, correct / total

    def _evaluate_graph(self, x: tf.Tensor, y: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, ...]:
        probabilities = self.model(x, training=False)
        losses = keras.losses.sparse_categorical_crossentropy(y, probabilities) * mask
        predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        hits = tf.cast(tf.equal(predicted, y), tf.float32) * mask
        counts = tf.reduce_sum(mask, axis=0)
        return tf.reduce_sum(losses, axis=0) / counts, tf.reduce_sum(hits, axis=0) / counts

    def fit_folds(
        self,
        x: np.ndarray,
        y: np.ndarray,
        splits: Sequence[tuple[np.ndarray, np.ndarray]],
        *,
        epochs: int,
        seed: int,
        on_epoch_end: EpochCallback | None = None,
    ) -> list[dict[str, list[float]]]:
        """Train on every split at once; one Keras-style history per split."""
        rng = np.random.default_rng(seed)
        x_all, y_all = tf.constant(x), tf.constant(y, dtype=tf.int32)
        shortest = min(len(train) for train, _ in splits)
        longest_val = max(len(val) for _, val in splits)
        val_index = np.stack([np.resize(val, longest_val) for _, val in splits], axis=1)
        val_mask = np.stack(
            [np.arange(longest_val) < len(val) for _, val in splits], axis=1
        ).astype(np.float32)
        x_val = tf.gather(x_all, val_index)
        y_val = tf.gather(y_all, val_index)
        histories: list[dict[str, list[float]]] = [
            {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []} for _ in splits
        ]
        for epoch in range(epochs):
            order = np.stack([rng.permutation(train)[:shortest] for train, _ in splits], axis=1)
            loss, accuracy = self._train_epoch(x_all, y_all, tf.constant(order.astype(np.int32)))
            val_loss, val_accuracy = self._evaluate(x_val, y_val, tf.constant(val_mask))
            for fold, history in enumerate(histories):
                history["loss"].append(float(loss[fold]))
                history["accuracy"].append(float(accuracy[fold]))
                history["val_loss"].append(float(val_loss[fold]))
                history["val_accuracy"].append(float(val_accuracy[fold]))
            if on_epoch_end:
                mean = {
                    key: float(np.mean([h[key][-1] for h in histories])) for key in histories[0]
                }
                on_epoch_end(epoch + 1, mean)
        return histories
