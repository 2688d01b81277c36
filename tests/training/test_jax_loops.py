"""The JAX training loops against the TensorFlow ones: same weights and batches, same numbers.

Keras picks its backend once per process (``KERAS_BACKEND``), so every case trains in
child processes: one on TensorFlow that also saves the initial weights, then one on JAX
that loads them, and the test compares the histories the two wrote.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import tuner_environment

pytest.importorskip("jax", reason="the JAX trainers need jax: pip install jax")

ROOT = Path(__file__).resolve().parents[2]

# Measured over these cases, after 2 epochs: losses differ by up to 3.2e-5 absolute,
# 2.8e-5 relative (mostly ~3e-6), which is float rounding grown by training: where a
# gradient is ~0, rounding can flip the sign of Adam's first step for that weight. An
# accuracy may differ by one image whose two top classes are that close. The tolerances
# leave room for other CPUs' rounding.
LOSS_RTOL = 2e-4
ONE_IMAGE = 1 / 300 + 1e-6  # of the 300 validation images (the fewest any case counts)

# Writes each case's histories (and, on TensorFlow, the initial weights) to a folder.
# No Dropout: its masks come from each backend's own random generator.
CROSS_BACKEND_CHILD = """
import dataclasses, json, sys
from pathlib import Path

if sys.argv[2] == "jax":
    sys.modules["tensorflow"] = None  # any import of TensorFlow now fails

import keras
import numpy as np

from tests.helpers import synthetic_images
from tuner.study import load_definitions
from tuner.study import BUILTIN_STUDIES_DIR
from tuner.training import build_model, build_packed_model, dense_weights, pack_weights

out = Path(sys.argv[1])
backend = keras.backend.backend()
if backend == "tensorflow":
    from tuner.training._tf_loops import TFFoldLoop as Plain, TFPackedLoop as Packed
else:
    from tuner.training._jax_loops import JaxPackedLoop as Packed, JaxFoldLoop as Plain


def data(n, seed):
    images, labels = synthetic_images(n, seed)
    # Some wrong labels, so that two epochs do not drive every probability to 0 or 1.
    rng = np.random.default_rng(seed + 100)
    noisy = rng.random(n) < 0.2
    labels[noisy] = rng.integers(0, 10, noisy.sum())
    return images.reshape(n, 784).astype(np.float32) / 255, labels.astype(np.int32)


def weights(model, name):
    path = out / f"{name}.npz"
    if backend == "tensorflow":
        np.savez(path, *model.get_weights())
    else:
        saved = np.load(path)
        model.set_weights([saved[f"arr_{i}"] for i in range(len(saved.files))])


x, y = data(1000, seed=0)  # 8 batches of 120 and a last one of 40
x_val, y_val = data(300, seed=1)
splits = [
    (np.arange(0, 700), np.arange(700, 1000)),
    (np.arange(300, 1000), np.arange(0, 300)),
    (np.r_[0:300, 600:1000], np.arange(300, 600)),
]
units = (64, 32)
definitions = load_definitions(BUILTIN_STUDIES_DIR)
results = {}
for case, variant, optimizer in [
    ("bn", "2layer", "adam"),
    ("no-bn", "2layer-no-bn", "adam"),
    ("rmsprop", "2layer-no-bn", "rmsprop"),
]:
    base = definitions[variant]
    definition = dataclasses.replace(
        base, dropout=0.0, protocol=dataclasses.replace(base.protocol, optimizer=optimizer)
    )
    model = build_model(definition, units, seed=3)
    weights(model, f"{case}-plain")
    results[f"{case}-plain"] = [
        Plain(model, definition.protocol).fit(x, y, epochs=2, validation=(x_val, y_val), seed=7)
    ]
    if optimizer != "adam":
        continue  # TensorFlow's TFPackedLoop runs Adam only
    packed = build_packed_model(definition, units, 3)
    if backend == "tensorflow":
        pack_weights(
            packed, [dense_weights(build_model(definition, units, seed=s)) for s in (4, 5, 6)]
        )
    weights(packed, f"{case}-packed")
    results[f"{case}-packed"] = Packed(packed, definition, 3).fit_folds(
        x, y, splits, epochs=2, seed=7
    )
(out / f"{backend}.json").write_text(json.dumps(results))
"""

# A tiny model with BatchNorm and Dropout, plain and packed, on JAX alone.
TRAINING_CHILD = """
import json, sys

sys.modules["tensorflow"] = None  # any import of TensorFlow now fails

import numpy as np

from tests.helpers import synthetic_images
from tuner.study import load_definitions
from tuner.study import BUILTIN_STUDIES_DIR
from tuner.training import build_model, build_packed_model, dense_weights, pack_weights
from tuner.training._jax_loops import JaxPackedLoop, JaxFoldLoop

images, labels = synthetic_images(1500, seed=2)
x, y = images.reshape(1500, 784).astype(np.float32) / 255, labels.astype(np.int32)
definition = load_definitions(BUILTIN_STUDIES_DIR)["2layer"]  # BatchNorm + Dropout(0.5)
model = build_model(definition, (64, 32), seed=1)
start = model.get_weights()
trainer = JaxFoldLoop(model, definition.protocol)
history = trainer.fit(x[:1000], y[:1000], epochs=4, validation=(x[1000:], y[1000:]), seed=0)
evaluated = trainer.evaluate(x[1000:], y[1000:])
trainer.reset(start)
again = trainer.fit(x[:1000], y[:1000], epochs=1, validation=(x[1000:], y[1000:]), seed=0)

splits = [(np.r_[0:500, 1000:1500], np.arange(500, 1000)), (np.arange(500, 1500), np.arange(500))]
packed = build_packed_model(definition, (64, 32), 2)
pack_weights(packed, [dense_weights(build_model(definition, (64, 32), seed=s)) for s in (1, 2)])
folds = JaxPackedLoop(packed, definition, 2).fit_folds(x, y, splits, epochs=4, seed=0)
print(json.dumps({"history": history, "evaluated": evaluated, "again": again, "folds": folds}))
"""


def run_child(code: str, backend: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=tuner_environment({"KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


@pytest.fixture(scope="module")
def histories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list]]:
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("the cross-backend comparison needs TensorFlow too")
    out = tmp_path_factory.mktemp("cross_backend")
    for backend in ("tensorflow", "jax"):  # TensorFlow first: it saves the initial weights
        run_child(CROSS_BACKEND_CHILD, backend, str(out), backend)
    return {
        backend: json.loads((out / f"{backend}.json").read_text())
        for backend in ("tensorflow", "jax")
    }


@pytest.mark.parametrize(
    "case", ["bn-plain", "bn-packed", "no-bn-plain", "no-bn-packed", "rmsprop-plain"]
)
def test_jax_trains_exactly_as_tensorflow(histories: dict[str, dict[str, list]], case: str) -> None:
    """Same initial weights and batch order, no Dropout: per-epoch numbers agree."""
    reference, candidate = histories["tensorflow"][case], histories["jax"][case]
    assert len(candidate) == len(reference)
    for fold_reference, fold_candidate in zip(reference, candidate, strict=True):
        assert set(fold_candidate) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert fold_reference["loss"][-1] < fold_reference["loss"][0]  # it did learn
        for key, values in fold_reference.items():
            tolerance = {"atol": ONE_IMAGE} if key.endswith("accuracy") else {"rtol": LOSS_RTOL}
            np.testing.assert_allclose(
                fold_candidate[key], values, **tolerance, err_msg=f"{case} {key}"
            )


def test_jax_trainers_learn_without_tensorflow() -> None:
    output = json.loads(run_child(TRAINING_CHILD, "jax").strip().splitlines()[-1])
    history = output["history"]
    assert all(len(curve) == 4 for curve in history.values())
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.5  # chance is 0.1
    # The last epoch's validation numbers are the trained model's, as evaluate sees them.
    assert output["evaluated"] == pytest.approx(
        [history["val_loss"][-1], history["val_accuracy"][-1]], rel=1e-5
    )
    # reset restores the weights and the optimizer, so the first epoch repeats exactly
    # but for Dropout, whose seed state runs on (as on TensorFlow).
    assert output["again"]["loss"][0] == pytest.approx(history["loss"][0], rel=0.05)
    assert [fold["val_accuracy"][-1] > 0.5 for fold in output["folds"]] == [True, True]


# Initial weights drawn together (one compiled draw per layer shape, over many seeds)
# against the weights of each model built alone: they must be the same bits.
INITIAL_WEIGHTS_CHILD = """
import json

import numpy as np

from tuner.study import load_definitions
from tuner.study import BUILTIN_STUDIES_DIR
from tuner.training import build_model, dense_weights, initial_weights
from tuner.training._models import initial_weights_of

definition = load_definitions(BUILTIN_STUDIES_DIR)["3layer"]
points = [(256, 32, 8), (512, 128, 16), (256, 32, 8)]
seeds = [7, 3_000_000_000, 8]  # fold seeds are CRC-32s: some exceed 2**31
together = initial_weights_of(definition, points, seeds)
alone = [dense_weights(build_model(definition, u, seed=s)) for u, s in zip(points, seeds)]
one = initial_weights(definition, points[1], seeds[1])
print(json.dumps({
    "layers": [len(w) for w in together],
    "equal": all(
        np.array_equal(a, b)
        for mine, theirs in zip(together, alone)
        for layer_mine, layer_theirs in zip(mine, theirs)
        for a, b in zip(layer_mine, layer_theirs)
    ),
    "single_equal": all(
        np.array_equal(a, b) for x, y in zip(one, alone[1]) for a, b in zip(x, y)
    ),
    "seeds_differ": not np.array_equal(together[0][0][0], together[2][0][0]),
}))
"""


def test_initial_weights_drawn_together_equal_each_built_model() -> None:
    output = json.loads(run_child(INITIAL_WEIGHTS_CHILD, "jax").strip().splitlines()[-1])
    assert output == {
        "layers": [4, 4, 4],
        "equal": True,
        "single_equal": True,
        "seeds_differ": True,
    }
