"""Grid axes trained for real: one study over a setting agrees with one study per value.

The shipped ``2layer-ablation`` study is the seed's three 2layer variants (and the fourth
corner, neither BatchNorm nor Dropout) as one 36-point grid. On the same data and folds,
each of its points starts from the same initial weights and sees the same batches as the
matching point of the separate variant, so without Dropout the two must agree to float
rounding; with Dropout the masks come from another generator, so they agree as two runs
of the same model do.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import optuna
import pytest
from rich.console import Console

import tuner
from tuner.data._datasets import DEBIAN_FASHION_MNIST
from tuner.study import BUILTIN_STUDIES_DIR, load_definition, load_definitions

SEPARATE = ["2layer", "2layer-no-dropout", "2layer-no-bn"]


def point_values(storage: str, name: str) -> dict[tuple, float]:
    """CV accuracy by (l1, l2, batch_norm, dropout) of a complete study."""
    definition = load_definitions(BUILTIN_STUDIES_DIR)[name]
    study = optuna.load_study(study_name=name, storage=storage)
    values = {}
    for trial in study.get_trials(states=[optuna.trial.TrialState.COMPLETE]):
        point = definition.at(trial.params)
        key = (*definition.units_of(trial.params), point.batch_norm, point.dropout)
        values[key] = trial.value
    return values


@pytest.mark.slow
@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="needs dataset-fashion-mnist")
def test_the_ablation_study_agrees_with_the_separate_2layer_variants(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'tuner.db'}"
    console = Console(file=io.StringIO(), width=200)
    tuner.launch(
        ["2layer-ablation", *SEPARATE],
        "fashion-mnist",
        subset=1200,
        epochs=2,
        storage=storage,
        report=False,
        threads=2,
        console=console,
    )
    ablation = point_values(storage, "2layer-ablation")
    assert len(ablation) == 36
    separate: dict[tuple, float] = {}
    for name in SEPARATE:
        separate.update(point_values(storage, name))
    assert len(separate) == 27
    exact = [abs(ablation[key] - value) for key, value in separate.items() if key[3] == 0.0]
    dropped = [ablation[key] - value for key, value in separate.items() if key[3] > 0.0]
    assert len(exact) == 9 and len(dropped) == 18
    # Same weights, batches and arithmetic: float rounding only.
    assert max(exact) < 0.005, exact
    # Other Dropout masks: two runs of one model. After 14 steps on 800 images a point's
    # CV moves by about 0.04 from mask to mask (0.12 at most seen), so the mean of 18
    # differences has a standard error near 0.01 (measured here: +0.022). At 6,000
    # images and 5 epochs the mean was 0.0000 with std 0.008 (bench/RESULTS.md).
    assert abs(float(np.mean(dropped))) < 0.035, dropped


def test_every_combination_of_the_axes_is_one_complete_trial(
    tmp_path: Path, synthetic_npz: Path
) -> None:
    """Widths x learning rate x Dropout (packed together) x batch size (groups apart)."""
    variant = tuner.define_variant(
        "axes",
        {
            "l1": [16, 8],
            "learning_rate": [0.001, 0.01],
            "dropout": [0.0, 0.25],
            "batch_size": [16, 32],
        },
        epochs=1,
    )
    storage = f"sqlite:///{tmp_path / 'tuner.db'}"
    output = io.StringIO()
    tuner.launch(
        variant,
        synthetic_npz,
        storage=storage,
        report=False,
        threads=1,
        console=Console(file=output, width=200),
    )
    study = optuna.load_study(study_name="axes", storage=storage)
    complete = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert len(study.trials) == len(complete) == 16
    combos = {
        (t.params["l1"], t.params["learning_rate"], t.params["dropout"], t.params["batch_size"])
        for t in complete
    }
    assert len(combos) == 16
    # One packed model per batch size: each claim held the 8 points of one group.
    batches = [line for line in output.getvalue().splitlines() if "training together" in line]
    assert len(batches) == 2, output.getvalue()[-2000:]


def test_weight_decay_reaches_the_optimizer(tmp_path: Path) -> None:
    """A weight decay axis trains different models: the decay is applied, on every path."""
    from tuner.training import training_loops
    from tuner.training._models import build_model, make_optimizer

    path = tmp_path / "decay.toml"
    path.write_text("[grid]\nl1 = [8]\nweight_decay = [0.0, 0.5]\n[protocol]\nepochs = 1\n")
    definition = load_definition(path)
    assert make_optimizer(definition.at({"weight_decay": 0.5}).protocol).weight_decay == 0.5
    rng = np.random.default_rng(0)
    x = rng.random((64, 784), dtype=np.float32)
    y = rng.integers(0, 10, 64).astype(np.int32)
    kernels = []
    for decay in (0.0, 0.5):
        point = definition.at({"l1": 8, "weight_decay": decay})
        model = build_model(point, (8,), seed=3)
        loop = training_loops().single(model, point.protocol)
        loop.fit(x, y, epochs=2, validation=(x[:8], y[:8]), seed=0)
        kernels.append(np.asarray(model.layers[0].kernel))
    # Decoupled decay shrinks every weight a little more each step.
    assert np.abs(kernels[1]).sum() < np.abs(kernels[0]).sum()


def test_epochs_with_an_epochs_axis_is_refused_before_any_work(
    tmp_path: Path, synthetic_npz: Path
) -> None:
    from tuner.errors import TunerError

    variant = tuner.define_variant("timed", {"l1": [8], "epochs": [1, 2]})
    storage = tmp_path / "tuner.db"
    with pytest.raises(TunerError, match="--epochs 3: variant 'timed' has an epochs axis"):
        tuner.launch(variant, synthetic_npz, storage=f"sqlite:///{storage}", epochs=3)
    assert not storage.exists()
