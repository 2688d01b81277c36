import keras
import numpy as np
import pytest

from tuner.study import BUILTIN_STUDIES_DIR, load_definitions
from tuner.training import build_model, expected_parameter_count

DEFINITIONS = load_definitions(BUILTIN_STUDIES_DIR)


def layer_kinds(model: keras.Model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


@pytest.mark.parametrize(
    ("name", "units", "kinds"),
    [
        ("2layer", (512, 128), ["Dense", "BatchNormalization", "Dropout"] * 2 + ["Dense"]),
        ("2layer-no-dropout", (256, 32), ["Dense", "BatchNormalization"] * 2 + ["Dense"]),
        ("2layer-no-bn", (328, 64), ["Dense", "Dropout"] * 2 + ["Dense"]),
        ("3layer", (512, 128, 16), ["Dense", "BatchNormalization", "Dropout"] * 3 + ["Dense"]),
        ("3layer-no-bn", (256, 32, 8), ["Dense", "Dropout"] * 3 + ["Dense"]),
        (
            "5layer",
            (512, 256, 96, 32, 8),
            ["Dense", "BatchNormalization", "Dropout"] * 5 + ["Dense"],
        ),
    ],
)
def test_layer_order_and_parameter_count(name: str, units: tuple[int, ...], kinds: list[str]):
    definition = DEFINITIONS[name]
    model = build_model(definition, units)
    assert layer_kinds(model) == kinds
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [*units, 10]
    assert all(layer.activation.__name__ == "relu" for layer in dense[:-1])
    assert dense[-1].activation.__name__ == "softmax"
    assert all(
        isinstance(layer.kernel_initializer, keras.initializers.HeNormal) for layer in dense[:-1]
    )
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout):
            assert layer.rate == definition.dropout
    assert model.count_params() == expected_parameter_count(definition, units)


def test_known_parameter_count_of_the_2layer_winner() -> None:
    # 784*512+512 + 4*512 + 512*128+128 + 4*128 + 128*10+10
    assert build_model(DEFINITIONS["2layer"], (512, 128)).count_params() == 471_434


def test_compiled_with_adam_defaults_and_seeded_weights() -> None:
    definition = DEFINITIONS["2layer-no-bn"]
    first = build_model(definition, (256, 32), seed=3)
    again = build_model(definition, (256, 32), seed=3)
    assert isinstance(first.optimizer, keras.optimizers.Adam)
    assert float(first.optimizer.learning_rate) == pytest.approx(0.001)
    np.testing.assert_array_equal(
        first.layers[0].get_weights()[0], again.layers[0].get_weights()[0]
    )
    probabilities = first.predict(np.zeros((2, 784), np.float32), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_wrong_number_of_units_is_refused() -> None:
    with pytest.raises(ValueError):
        build_model(DEFINITIONS["3layer"], (512, 128))


def test_grid_batch_norm_trains_as_keras_batch_norm() -> None:
    # The fused kernel's output, input gradient, gamma/beta gradients and moving
    # statistics (its Bessel-corrected variance undone) equal Keras' layer on the same data.
    import tensorflow as tf

    from tuner.training._models import GridBatchNorm

    rng = np.random.default_rng(3)
    inputs = tf.constant(rng.normal(2.0, 3.0, (120, 40)).astype(np.float32))
    upstream = tf.constant(rng.normal(size=(120, 40)).astype(np.float32))
    gamma = rng.uniform(0.5, 1.5, 40).astype(np.float32)
    results = []
    for layer in (keras.layers.BatchNormalization(), GridBatchNorm()):
        layer.build(inputs.shape)
        layer.gamma.assign(gamma)
        layer.beta.assign(np.linspace(-1, 1, 40, dtype=np.float32))
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = layer(inputs, training=True)
            loss = tf.reduce_sum(outputs * upstream)
        grads = tape.gradient(loss, [inputs, layer.gamma, layer.beta])
        inference = layer(inputs, training=False)
        results.append([outputs, *grads, layer.moving_mean, layer.moving_variance, inference])
    for keras_value, grid_value in zip(*results, strict=True):
        np.testing.assert_allclose(
            np.asarray(grid_value), np.asarray(keras_value), rtol=1e-4, atol=1e-5
        )
