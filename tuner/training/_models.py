"""The study's MLP, and its packed form: Keras layers and ``keras.ops`` only, any backend.

A grid point's model is Dense(units, relu, he_normal) per hidden layer, then BatchNorm
and Dropout when the variant has them, and a 10-way softmax, exactly as
docs/study-protocol.md describes; sparse categorical cross-entropy is the one-hot loss
without materialising one-hot labels.

The packed form holds k independent copies of that model (one per fold) so that every
op does k times the work for one op's fixed cost:

* dense layers hold a ``(k, inputs, units)`` kernel and multiply with one batched
  ``einsum``; each slice starts from exactly the weights a separate fit would use;
* BatchNorm normalises a ``(batch, k * units)`` view, so its statistics stay per fold
  and per unit, as in separate models; Dropout masks are independent anyway.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import layers, ops

from tuner.data import N_CLASSES, N_PIXELS
from tuner.study import StudyDefinition, TrainingProtocol

OPTIMIZER_CLASSES: dict[str, type[keras.optimizers.Optimizer]] = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "nadam": keras.optimizers.Nadam,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
}


def build_model(
    definition: StudyDefinition, units: Sequence[int], seed: int | None = None
) -> keras.Model:
    """A compiled model for one grid point; `seed` makes initial weights reproducible."""
    if len(units) != definition.n_layers:
        raise ValueError(f"{definition.name} has {definition.n_layers} layers, got {units}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    stack: list[keras.layers.Layer] = [keras.Input(shape=(N_PIXELS,))]
    for index, width in enumerate(units, start=1):
        stack.append(
            keras.layers.Dense(
                width, activation="relu", kernel_initializer="he_normal", name=f"dense_{index}"
            )
        )
        if definition.batch_norm:
            stack.append(keras.layers.BatchNormalization(name=f"batch_norm_{index}"))
        if definition.dropout > 0:
            stack.append(keras.layers.Dropout(definition.dropout, name=f"dropout_{index}"))
    stack.append(keras.layers.Dense(N_CLASSES, activation="softmax", name="output"))
    model = keras.Sequential(stack, name=f"{definition.name}_{'_'.join(map(str, units))}")
    model.compile(
        optimizer=make_optimizer(definition.protocol),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def make_optimizer(protocol: TrainingProtocol) -> keras.optimizers.Optimizer:
    return OPTIMIZER_CLASSES[protocol.optimizer](learning_rate=protocol.learning_rate)


def expected_parameter_count(definition: StudyDefinition, units: Sequence[int]) -> int:
    """Weights the model must have: dense kernels and biases, plus 4 per BatchNorm unit."""
    total, fan_in = 0, N_PIXELS
    for width in units:
        total += fan_in * width + width
        if definition.batch_norm:
            total += 4 * width
        fan_in = width
    return total + fan_in * N_CLASSES + N_CLASSES


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

    def call(self, inputs):
        return self.activation(ops.einsum("bpi,pio->bpo", inputs, self.kernel) + self.bias)


def build_packed_model(
    definition: StudyDefinition, units: Sequence[int], packs: int
) -> keras.Model:
    """One model holding ``packs`` independent copies of a grid point's model."""
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
