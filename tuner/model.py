"""The MLP of the study, built exactly as SPEC.md describes.

Dense(units, relu, he_normal) per hidden layer, then BatchNorm and Dropout when the
variant has them, and a 10-way softmax; sparse categorical cross-entropy is the
one-hot loss without materialising one-hot labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from tuner.data import N_CLASSES, N_PIXELS
from tuner.definitions import StudyDefinition, TrainingProtocol

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
    layers: list[keras.layers.Layer] = [keras.Input(shape=(N_PIXELS,))]
    for index, width in enumerate(units, start=1):
        layers.append(
            keras.layers.Dense(
                width, activation="relu", kernel_initializer="he_normal", name=f"dense_{index}"
            )
        )
        if definition.batch_norm:
            layers.append(keras.layers.BatchNormalization(name=f"batch_norm_{index}"))
        if definition.dropout > 0:
            layers.append(keras.layers.Dropout(definition.dropout, name=f"dropout_{index}"))
    layers.append(keras.layers.Dense(N_CLASSES, activation="softmax", name="output"))
    model = keras.Sequential(layers, name=f"{definition.name}_{'_'.join(map(str, units))}")
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
