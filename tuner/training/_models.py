"""The study's MLP, and its packed form: Keras layers and ``keras.ops`` only, any backend.

A grid point's model is Dense(units, relu, he_normal) per hidden layer (another
activation where the definition names one), then BatchNorm and Dropout when the variant
has them, and a softmax over the task's classes (10 for the seed's digits), exactly as
docs/study-protocol.md describes; sparse categorical cross-entropy is the one-hot loss
without materialising one-hot labels. A regression ends in one linear unit trained on the
mean squared error instead. The input width and the output layer come from the
definition's task (:attr:`StudyDefinition.task`).

The packed form holds k independent copies of that model (one per fold) so that every
op does k times the work for one op's fixed cost:

* dense layers hold a ``(k, inputs, units)`` kernel and multiply with one batched
  matmul (:func:`packed_matmul`); each slice starts from exactly the weights a separate
  fit would use;
* BatchNorm normalises a ``(batch, k * units)`` view, so its statistics stay per fold
  and per unit, as in separate models; Dropout masks are independent anyway.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from tuner.data import Task
from tuner.study import StudyDefinition, TrainingProtocol

OPTIMIZER_CLASSES: dict[str, type[keras.optimizers.Optimizer]] = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "nadam": keras.optimizers.Nadam,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
}


def output_activation(task: Task) -> str:
    """The output layer's activation: a softmax over the classes, or linear for a value."""
    return "linear" if task.regression else "softmax"


def build_model(
    definition: StudyDefinition, units: Sequence[int], seed: int | None = None
) -> keras.Model:
    """A compiled model for one grid point; `seed` makes initial weights reproducible."""
    if len(units) != definition.n_layers:
        raise ValueError(f"{definition.name} has {definition.n_layers} layers, got {units}")
    # On TensorFlow the global seed keeps the initial weights of studies made before the
    # JAX backend existed. Elsewhere every random layer gets its own seed: Keras' global
    # seeding would import TensorFlow whenever it is installed, even on JAX.
    seeded = seed is not None and keras.backend.backend() != "tensorflow"
    if seed is not None and not seeded:
        keras.utils.set_random_seed(seed)

    def layer_seed(offset: int) -> int:
        return (seed + offset) % 2**31  # type: ignore[operator]

    def initializer(index: int) -> str | keras.initializers.Initializer:
        return keras.initializers.HeNormal(seed=layer_seed(index)) if seeded else "he_normal"

    task = definition.task
    stack: list[keras.layers.Layer] = [keras.Input(shape=(task.inputs,))]
    for index, width in enumerate(units, start=1):
        stack.append(
            keras.layers.Dense(
                width,
                activation=definition.activation,
                kernel_initializer=initializer(index),
                name=f"dense_{index}",
            )
        )
        if definition.batch_norm:
            stack.append(keras.layers.BatchNormalization(name=f"batch_norm_{index}"))
        if definition.dropout > 0:
            stack.append(
                keras.layers.Dropout(
                    definition.dropout,
                    seed=layer_seed(1000 + index) if seeded else None,
                    name=f"dropout_{index}",
                )
            )
    stack.append(
        keras.layers.Dense(
            task.outputs,
            activation=output_activation(task),
            kernel_initializer=(
                keras.initializers.GlorotUniform(seed=layer_seed(0)) if seeded else "glorot_uniform"
            ),
            name="output",
        )
    )
    model = keras.Sequential(stack, name=f"{definition.name}_{'_'.join(map(str, units))}")
    model.compile(
        optimizer=make_optimizer(definition.protocol),
        loss="mean_squared_error" if task.regression else "sparse_categorical_crossentropy",
        metrics=[] if task.regression else ["accuracy"],
    )
    return model


def make_optimizer(protocol: TrainingProtocol) -> keras.optimizers.Optimizer:
    """The protocol's Keras optimizer, with its weight decay where the protocol sets one."""
    settings: dict[str, float] = {"learning_rate": protocol.learning_rate}
    if protocol.weight_decay is not None:
        settings["weight_decay"] = protocol.weight_decay
    return OPTIMIZER_CLASSES[protocol.optimizer](**settings)


def uses_plain_adam(protocol: TrainingProtocol) -> bool:
    """Adam without weight decay: the update the trainers write out fused themselves."""
    return protocol.optimizer == "adam" and protocol.weight_decay is None


def expected_parameter_count(definition: StudyDefinition, units: Sequence[int]) -> int:
    """Weights the model must have: dense kernels and biases, plus 4 per BatchNorm unit."""
    total, fan_in = 0, definition.task.inputs
    for width in units:
        total += fan_in * width + width
        if definition.batch_norm:
            total += 4 * width
        fan_in = width
    outputs = definition.task.outputs
    return total + fan_in * outputs + outputs


def packed_matmul(inputs: Any, kernel: Any) -> Any:
    """``(batch, k, inputs) x (k, inputs, units) -> (batch, k, units)``: k matmuls at once.

    As one batched matmul in fold-major order, between two transposes of the (small)
    activations, rather than ``einsum("bpi,pio->bpo")``: TensorFlow's einsum lowers its
    gradient to transposes of the kernel-sized operands, and forward plus backward of
    the 2layer grid's layer 1 took 22 ms against 13 ms this way (bench/RESULTS.md).
    """
    folds_first = ops.transpose(inputs, (1, 0, 2))
    return ops.transpose(ops.matmul(folds_first, kernel), (1, 0, 2))


class PackedDense(layers.Layer):
    """k independent Dense layers applied to the k slices of a ``(batch, k, inputs)`` input."""

    def __init__(
        self,
        packs: int,
        units: int,
        activation: str | None = None,
        columns: Sequence[int] = (),
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.packs, self.units = packs, units
        self.activation = keras.activations.get(activation)
        # In a grid model's layer 1: the grid point each unit belongs to.
        self.columns = [int(point) for point in columns]

    def build(self, input_shape: tuple[int, ...]) -> None:
        self.kernel = self.add_weight(
            name="kernel", shape=(self.packs, input_shape[-1], self.units), initializer="zeros"
        )
        self.bias = self.add_weight(
            name="bias", shape=(self.packs, self.units), initializer="zeros"
        )

    def call(self, inputs: Any) -> Any:
        return self.activation(packed_matmul(inputs, self.kernel) + self.bias)


def build_packed_model(
    definition: StudyDefinition, units: Sequence[int], packs: int
) -> keras.Model:
    """One model holding ``packs`` independent copies of a grid point's model."""
    task = definition.task
    inputs = keras.Input(shape=(packs, task.inputs))
    hidden = inputs
    for width in units:
        hidden = PackedDense(packs, width, definition.activation)(hidden)
        if definition.batch_norm:
            hidden = layers.Reshape((packs * width,))(hidden)
            hidden = layers.BatchNormalization()(hidden)
            hidden = layers.Reshape((packs, width))(hidden)
        if definition.dropout > 0:
            hidden = layers.Dropout(definition.dropout)(hidden)
    outputs = PackedDense(packs, task.outputs, output_activation(task))(hidden)
    return keras.Model(inputs, outputs)


DenseWeights = list[tuple[np.ndarray, np.ndarray]]
"""(kernel, bias) of each Dense layer of one grid point's model, input to output."""


def dense_weights(model: keras.Model) -> DenseWeights:
    """The (kernel, bias) of each Dense layer of a model from :func:`build_model`."""
    return [
        (np.asarray(layer.kernel), np.asarray(layer.bias))
        for layer in model.layers
        if isinstance(layer, keras.layers.Dense)
    ]


def initial_weights(definition: StudyDefinition, units: Sequence[int], seed: int) -> DenseWeights:
    """The Dense weights ``build_model(definition, units, seed)`` starts from, bit for bit.

    On TensorFlow they come from building that model (its global seed decides them). On
    JAX each layer's initializer has its own seed, so they are drawn directly, without
    building a model (:func:`initial_weights_of`).
    """
    if keras.backend.backend() != "jax":
        return dense_weights(build_model(definition, units, seed=seed))
    return initial_weights_of(definition, [units], [seed])[0]


def initial_weights_of(
    definition: StudyDefinition, points: Sequence[Sequence[int]], seeds: Sequence[int]
) -> list[DenseWeights]:
    """:func:`initial_weights` of many (point, seed) pairs, drawn together.

    Building a Keras model per point and fold made a grid batch's set-up cost seconds
    (7.7 s for the 2layer grid's 27 models on an H200, 4 s on a 2-core CPU), nearly all
    of it compiling one random-number program per layer shape. Here every kernel is drawn
    as Keras' initializer draws it (he_normal: truncated normal in [-2, 2] times
    ``sqrt(2 / fan_in) / 0.8796...``; glorot_uniform: uniform in ``+-sqrt(6 / (fan_in +
    fan_out))``), from the seed :func:`build_model` gives that layer, but as a flat vector
    whose length is rounded up to a power of two and then cut to the kernel's shape: JAX's
    counter-based generator gives each element the same value whatever the vector's
    length, so a few programs serve every shape. The tests check the result against the
    built models' weights, bit for bit (on the CPU; a GPU may round the scaling apart).
    """
    if keras.backend.backend() != "jax":
        return [
            dense_weights(build_model(definition, u, seed=s))
            for u, s in zip(points, seeds, strict=True)
        ]
    from keras.src.random.seed_generator import draw_seed

    requests: dict[tuple[str, int], list[tuple[int, int, int, tuple[int, int]]]] = {}
    for index, (units, seed) in enumerate(zip(points, seeds, strict=True)):
        fan_in = definition.task.inputs
        layers_of = [
            ("he_normal", width, (seed + layer) % 2**31)
            for layer, width in enumerate(units, start=1)
        ]
        layers_of.append(("glorot_uniform", definition.task.outputs, seed % 2**31))
        for layer, (kind, width, layer_seed) in enumerate(layers_of):
            size = max(1024, 1 << (fan_in * width - 1).bit_length())
            requests.setdefault((kind, size), []).append(
                (index, layer, layer_seed, (fan_in, width))
            )
            fan_in = width
    kernels: dict[tuple[int, int], np.ndarray] = {}
    for (kind, size), wanted in requests.items():
        keys = ops.stack([draw_seed(layer_seed) for _, _, layer_seed, _ in wanted])
        scales = np.array([_initializer_scale(kind, shape) for *_, shape in wanted], np.float32)
        drawn = np.asarray(_flat_draw(kind, size)(keys, scales))
        for (index, layer, _, shape), flat in zip(wanted, drawn, strict=True):
            kernels[index, layer] = flat[: shape[0] * shape[1]].reshape(shape)
    return [
        [
            (kernels[index, layer], np.zeros(kernels[index, layer].shape[1], np.float32))
            for layer in range(len(units) + 1)
        ]
        for index, units in enumerate(points)
    ]


def _initializer_scale(kind: str, shape: tuple[int, int]) -> float:
    """The standard deviation (he_normal) or limit (glorot_uniform) Keras uses for ``shape``."""
    fan_in, fan_out = shape
    if kind == "he_normal":
        return math.sqrt(2.0 / max(1.0, fan_in)) / 0.87962566103423978
    return math.sqrt(3.0 / max(1.0, (fan_in + fan_out) / 2.0))


def _flat_draw(kind: str, size: int) -> Callable[[Any, Any], Any]:
    """Compiled: seeds ``(n, 2)`` and scales ``(n,)`` to ``n`` flat draws of ``size``."""
    import jax

    if (kind, size) not in _FLAT_DRAWS:

        def draw(seed: Any, scale: Any) -> Any:
            # The same calls Keras' JAX random functions make, with the array seed
            # an integer seed becomes (draw_seed) used as the key.
            if kind == "he_normal":
                sample = jax.random.truncated_normal(seed, -2.0, 2.0, (size,), "float32")
                return sample * scale + 0.0
            return jax.random.uniform(seed, (size,), "float32", minval=-scale, maxval=scale)

        _FLAT_DRAWS[kind, size] = jax.jit(jax.vmap(draw))
    return _FLAT_DRAWS[kind, size]


_FLAT_DRAWS: dict[tuple[str, int], Callable[[Any, Any], Any]] = {}


def pack_weights(packed: keras.Model, separate: Sequence[DenseWeights]) -> None:
    """Copy each separately initialised model's weights into its slice of the packed one."""
    dense = [layer for layer in packed.layers if isinstance(layer, PackedDense)]
    for position, layer in enumerate(dense):
        layer.kernel.assign(np.stack([weights[position][0] for weights in separate]))
        layer.bias.assign(np.stack([weights[position][1] for weights in separate]))


class WidthGroups(layers.Layer):
    """Layer 1's concatenated units ``(batch, k, sum of widths)`` to one
    ``(batch, k * n_g, w_g)`` tensor per group of ``n_g`` points of layer-1 width ``w_g``.

    Layer 1 concatenates each group's points next to each other, so every group's units
    are one contiguous slice, and the reshape makes its models fold-major: model
    ``fold * n_g + i`` is the group's ``i``-th point. Slices and reshapes only: no gather,
    no padding (one padded gather took 10% of the 2layer grid's step; bench/RESULTS.md).
    """

    def __init__(self, packs: int, groups: Sequence[tuple[int, int]], **kwargs: object):
        super().__init__(**kwargs)
        self.packs = packs
        self.groups = [(int(count), int(width)) for count, width in groups]

    def call(self, inputs: Any) -> list[Any]:
        if len(self.groups) == 1:
            count, width = self.groups[0]
            return [ops.reshape(inputs, (-1, self.packs * count, width))]
        # One split (its gradient one concatenation), not a slice per group (whose
        # gradients are each a zero-padded full-size tensor, then summed).
        ends = np.cumsum([count * width for count, width in self.groups])[:-1]
        parts = ops.split(inputs, [int(end) for end in ends], axis=2)
        return [
            ops.reshape(part, (-1, self.packs * count, width))
            for part, (count, width) in zip(parts, self.groups, strict=True)
        ]


class ModelOrder(layers.Layer):
    """The width groups' outputs, concatenated, put back in fold-major point order."""

    def __init__(self, order: Sequence[int], **kwargs: object):
        super().__init__(**kwargs)
        self.order = [int(index) for index in order]

    def call(self, inputs: list[Any]) -> Any:
        together = ops.concatenate(inputs, axis=1) if len(inputs) > 1 else inputs[0]
        if self.order == list(range(len(self.order))):
            return together
        return ops.take(together, np.array(self.order, np.int32), axis=1)


class GridDense(PackedDense):
    """A grid model's later Dense layer: ``n`` models' Dense layers, each zero-padded to the
    widest ``fan_in x fan_out`` of its width group.

    Padded weights start at zero and stay exactly zero with no mask on the kernel: a
    padded input is exactly zero (the :class:`UnitMask` of the layer before), so its
    kernel row gets a zero gradient; a padded unit's output is multiplied by zero by this
    layer's own UnitMask, so its kernel column and bias get a zero gradient too; and every
    study optimizer leaves a weight with only zero gradients at zero. Masking the
    activations rather than the kernel multiplies ``batch x units`` values per step, not
    ``fan_in x units`` twice (forward and backward).
    """

    def __init__(
        self,
        packs: int,
        units: int,
        input_widths: Sequence[int],
        output_widths: Sequence[int],
        activation: str | None = None,
        models: Sequence[tuple[int, int]] = (),
        **kwargs: Any,
    ):
        super().__init__(packs, units, activation, **kwargs)
        self.input_widths, self.output_widths = list(input_widths), list(output_widths)
        # (fold, point) of each of the n models, as a grid model lays them out.
        self.models = [(int(fold), int(point)) for fold, point in models]


class UnitMask(layers.Layer):
    """Multiplies each model's padded units by zero: after the activation (sigmoid(0) is
    not 0) and BatchNorm (beta), so padded units output, and pass back, exact zeros."""

    def __init__(self, widths: Sequence[int], units: int, **kwargs: object):
        super().__init__(**kwargs)
        self.widths, self.units = list(widths), units

    def build(self, input_shape: tuple[int, ...]) -> None:
        mask = np.zeros((len(self.widths), self.units), np.float32)
        for n, width in enumerate(self.widths):
            mask[n, :width] = 1.0
        self.mask = self.add_weight(
            name="unit_mask", shape=mask.shape, initializer="zeros", trainable=False
        )
        self.mask.assign(mask)

    def call(self, inputs: Any) -> Any:
        return inputs * self.mask


class PointActivation(layers.Layer):
    """Each slot (a unit column or a packed model) through its own point's activation.

    ``slots`` names the activation of every index along ``axis`` of the input; each
    output element is exactly that activation of its input (a select, not a blend).
    """

    def __init__(self, slots: Sequence[str], axis: int, **kwargs: object):
        super().__init__(**kwargs)
        self.slots, self.axis = list(slots), axis

    def call(self, inputs: Any) -> Any:
        names = np.array(self.slots)
        shape = [1, 1, 1]
        shape[self.axis] = len(self.slots)
        outputs = ops.zeros_like(inputs)
        for name in sorted(set(self.slots)):
            chosen = ops.convert_to_tensor((names == name).reshape(shape))
            outputs = ops.where(chosen, keras.activations.get(name)(inputs), outputs)
        return outputs


class PointSelect(layers.Layer):
    """``[on, off]`` to ``on`` where a slot's point has the switch on, else ``off``
    (BatchNorm per point: a point without it gets the layer's input unchanged)."""

    def __init__(self, slots: Sequence[bool], axis: int, **kwargs: object):
        super().__init__(**kwargs)
        self.slots, self.axis = list(slots), axis

    def call(self, inputs: Any) -> Any:
        on, off = inputs
        shape = [1, 1, 1]
        shape[self.axis] = len(self.slots)
        chosen = ops.convert_to_tensor(np.array(self.slots).reshape(shape))
        return ops.where(chosen, on, off)


class PointDropout(layers.Layer):
    """Dropout with each slot's own rate (0 leaves a slot exactly unchanged).

    On TensorFlow the masks come from 16-bit random draws, two per 32-bit Philox draw: a
    unit is kept when its draw is at least ``round(rate * 65536)``, so the rate applied
    is the declared one to within 2^-17, and kept units are scaled by exactly
    ``1 / (1 - rate)``. Half the random bits and no float conversion: Keras' own Dropout
    spent most of its time drawing floats (bench/RESULTS.md). Other backends draw floats.
    """

    def __init__(
        self, slots: Sequence[float], axis: int, seed: int | None = None, **kwargs: object
    ):
        super().__init__(**kwargs)
        self.slots, self.axis = [float(rate) for rate in slots], axis
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training:
            return inputs
        shape = [1, 1, 1]
        shape[self.axis] = len(self.slots)
        rates = np.array(self.slots, np.float64).reshape(shape)
        keep = ops.convert_to_tensor((1.0 - rates).astype(np.float32))
        if keras.backend.backend() == "tensorflow":
            kept = _kept_16bit(
                inputs, np.round(rates * 65536).astype(np.uint16), self.seed_generator
            )
        else:
            kept = keras.random.uniform(ops.shape(inputs), seed=self.seed_generator) < keep
        return ops.where(kept, inputs / keep, ops.zeros_like(inputs))


def _kept_16bit(inputs: Any, thresholds: np.ndarray, seed_generator: Any) -> Any:
    """TensorFlow: True where a 16-bit uniform draw is at least its slot's threshold."""
    import tensorflow as tf

    # As Keras' TensorFlow backend turns a generator's state into a stateless seed.
    seed = tf.cast(tf.math.floormod(seed_generator.next(), tf.int32.max - 1), tf.int32)
    size = tf.size(inputs)
    bits = tf.random.stateless_uniform(
        [(size + 1) // 2], seed=seed, minval=None, maxval=None, dtype=tf.uint32
    )
    draws = tf.reshape(tf.bitcast(bits, tf.uint16), [-1])[:size]
    return tf.reshape(draws, tf.shape(inputs)) >= tf.constant(thresholds)


class GridBatchNorm(layers.BatchNormalization):
    """Keras' BatchNormalization of a ``(batch, features)`` input, trained on TensorFlow
    with its fused kernel (``FusedBatchNormV3`` on a ``(batch, 1, 1, features)`` view).

    Same normalisation, moving averages and variables as the parent, up to float
    rounding: the fused kernel returns the batch variance with Bessel's correction, which
    is undone before the moving variance is updated. The fused forward and backward took
    the 2layer grid's layer-1 BatchNorm from 3.4 to 2.1 ms (bench/RESULTS.md). Other
    backends, and inference, run the parent's ops.
    """

    def __init__(self, unit_points: Sequence[int] = (), **kwargs: Any):
        super().__init__(**kwargs)
        # The grid point each normalised unit belongs to (for its learning rate).
        self.unit_points = [int(point) for point in unit_points]

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        if not (training and self.trainable) or keras.backend.backend() != "tensorflow":
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        rows = tf.shape(inputs)[0]
        outputs, mean, corrected = tf.compat.v1.nn.fused_batch_norm(
            tf.reshape(inputs, (rows, 1, 1, -1)),
            self.gamma,
            self.beta,
            epsilon=self.epsilon,
            is_training=True,
        )
        count = tf.cast(rows, corrected.dtype)
        variance = corrected * (count - 1.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
        )
        return tf.reshape(outputs, tf.shape(inputs))


def _shared(values: Sequence[Any]) -> tuple[bool, Any]:
    """(True, the value) when every point has the same value, else (False, None)."""
    return (True, values[0]) if len(set(values)) == 1 else (False, None)


def _point_layers(
    hidden: Any,
    settings: Sequence[StudyDefinition],
    slots: Sequence[int],
    axis: int,
    name: str,
    unit_mask: Callable[[Any], Any] | None,
) -> Any:
    """Activation, BatchNorm and Dropout of one grid layer, per point where they differ.

    ``slots[i]`` is the point of index ``i`` along ``axis``. A setting every point shares
    builds exactly the layers a one-setting grid always had.
    """
    acts = [settings[p].activation for p in slots]
    if not _shared(acts)[0]:  # else the Dense layer before applied the one activation
        hidden = PointActivation(acts, axis)(hidden)
    norms = [settings[p].batch_norm for p in slots]
    if any(norms):
        shape = tuple(hidden.shape[1:])
        along = [1, 1]
        along[axis - 1] = len(slots)
        unit_points = np.broadcast_to(np.reshape(slots, along), shape).reshape(-1).tolist()
        before = hidden
        hidden = layers.Reshape((math.prod(shape),))(hidden)
        hidden = GridBatchNorm(unit_points, name=f"grid_batch_norm_{name}")(hidden)
        hidden = layers.Reshape(shape)(hidden)
        if not all(norms):
            hidden = PointSelect(norms, axis)([hidden, before])
    if unit_mask is not None:
        hidden = unit_mask(hidden)
    rates = [settings[p].dropout for p in slots]
    if any(rates):
        hidden = PointDropout(rates, axis)(hidden)
    return hidden


def build_grid_model(
    definition: StudyDefinition,
    points: Sequence[Sequence[int]],
    packs: int,
    settings: Sequence[StudyDefinition] | None = None,
) -> keras.Model:
    """One model holding ``len(points)`` grid points, each with ``packs`` folds.

    Input ``(batch, packs, inputs)``: one batch per fold, shared by every point of that fold
    (common random numbers). Output ``(batch, packs * len(points), outputs)``, fold-major:
    model ``n = fold * len(points) + point``. Layer 1 is one wide matmul per fold, with
    no padding. Later layers run one chain per layer-1 width (:class:`WidthGroups`),
    batched over the group's (fold, point) models with widths zero-padded to the group's
    widest, padded units held at exactly zero.

    ``settings`` gives each point's own definition (``definition.at(params)``) when the
    grid has packed axes: activation, BatchNorm on/off and Dropout rate then become
    per-point data (selects and per-slot rates); the learning rate becomes per-point
    through :func:`grid_learning_rate_scales`. Without it every point has ``definition``'s.
    """
    settings = list(settings) if settings is not None else [definition] * len(points)
    n_points = len(points)
    first = [units[0] for units in points]
    # Points of one layer-1 width side by side (stable, so equal widths keep their order).
    order = sorted(range(n_points), key=first.__getitem__)
    groups = [list(group) for _, group in itertools.groupby(order, key=first.__getitem__)]
    columns = [point for point in order for _ in range(first[point])]
    task = definition.task
    inputs = keras.Input(shape=(packs, task.inputs))
    # Layer 1 holds 63-87% of the FLOPs in the study's grids: every point's units are
    # concatenated into one wide matmul per fold, with no padding at all.
    activation = _shared([s.activation for s in settings])[1]  # None: per point, below
    hidden = PackedDense(packs, len(columns), activation, columns=columns, name="grid_dense_1")(
        inputs
    )
    hidden = _point_layers(hidden, settings, columns, 2, "1", None)
    parts = WidthGroups(packs, [(len(group), first[group[0]]) for group in groups])(hidden)
    outputs = []
    for index, (group, hidden) in enumerate(zip(groups, parts, strict=True)):
        models = [(fold, point) for fold in range(packs) for point in group]
        slots = [point for _, point in models]
        widths_in = [first[point] for point in slots]
        # The Dense layers apply the group's activation when its points share one.
        group_activation = _shared([settings[point].activation for point in group])[1]
        for layer in range(1, definition.n_layers):
            widths_out = [points[point][layer] for point in slots]
            widest = max(widths_out)
            hidden = GridDense(
                len(models),
                widest,
                widths_in,
                widths_out,
                group_activation,
                models,
                name=f"grid_dense_{layer + 1}_{index}",
            )(hidden)
            # Only a group whose points differ in this layer's width has padded units.
            mask = UnitMask(widths_out, widest) if min(widths_out) < widest else None
            hidden = _point_layers(hidden, settings, slots, 1, f"{layer + 1}_{index}", mask)
            widths_in = widths_out
        outputs.append(
            GridDense(
                len(models),
                task.outputs,
                widths_in,
                [task.outputs] * len(models),
                output_activation(task),
                models,
                name=f"grid_output_{index}",
            )(hidden)
        )
    # Model (fold, point) sits at this index of the groups' concatenated outputs.
    position = {
        (fold, point): index
        for index, (fold, point) in enumerate(
            (fold, point) for group in groups for fold in range(packs) for point in group
        )
    }
    order_out = [position[fold, point] for fold in range(packs) for point in range(n_points)]
    return keras.Model(inputs, ModelOrder(order_out)(outputs))


def grid_learning_rate_scales(
    model: keras.Model, settings: Sequence[StudyDefinition], learning_rate: float
) -> list[np.ndarray] | None:
    """Per trainable variable of a grid model, each element's point's learning rate over
    ``learning_rate`` (broadcastable to the variable); None when every point trains at
    ``learning_rate``.

    The trainers multiply each optimizer update by it: the study's optimizers all update
    linearly in the learning rate, so a point trains as with its own learning rate.
    """
    ratios = np.array([s.protocol.learning_rate / learning_rate for s in settings], np.float32)
    if np.all(ratios == 1.0):
        return None
    scales: dict[str, np.ndarray] = {}
    for layer in model.layers:
        if isinstance(layer, GridDense):
            per_model = ratios[[point for _, point in layer.models]]
            scales[layer.kernel.path] = per_model.reshape(-1, 1, 1)
            scales[layer.bias.path] = per_model.reshape(-1, 1)
        elif isinstance(layer, PackedDense):
            columns = ratios[layer.columns]
            scales[layer.kernel.path] = columns.reshape(1, 1, -1)
            scales[layer.bias.path] = columns.reshape(1, -1)
        elif isinstance(layer, GridBatchNorm):
            scales[layer.gamma.path] = ratios[layer.unit_points]
            scales[layer.beta.path] = ratios[layer.unit_points]
    return [scales[variable.path] for variable in model.trainable_variables]


def grid_weights(grid: keras.Model, separate: Sequence[Sequence[DenseWeights]], packs: int) -> None:
    """Copy separately initialised models' weights into a grid model: ``separate[point][fold]``."""
    first = next(layer for layer in grid.layers if type(layer) is PackedDense)
    kernel = np.zeros(first.kernel.shape, np.float32)
    bias = np.zeros(first.bias.shape, np.float32)
    offset = 0
    for point, _ in itertools.groupby(first.columns):
        for fold in range(packs):
            source_kernel, source_bias = separate[point][fold][0]
            width = source_kernel.shape[1]
            kernel[fold, :, offset : offset + width] = source_kernel
            bias[fold, offset : offset + width] = source_bias
        offset += width
    first.kernel.assign(kernel)
    first.bias.assign(bias)
    chains: dict[tuple[int, ...], int] = {}  # a group's models -> its next Dense position
    for layer in grid.layers:
        if not isinstance(layer, GridDense):
            continue
        key = tuple(point for _, point in layer.models)
        position = chains[key] = chains.get(key, 0) + 1
        kernel = np.zeros(layer.kernel.shape, np.float32)
        bias = np.zeros(layer.bias.shape, np.float32)
        for n, (fold, point) in enumerate(layer.models):
            source_kernel, source_bias = separate[point][fold][position]
            fan_in, fan_out = source_kernel.shape
            kernel[n, :fan_in, :fan_out] = source_kernel
            bias[n, :fan_out] = source_bias
        layer.kernel.assign(kernel)
        layer.bias.assign(bias)
