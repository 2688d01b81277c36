"""A regression trained by every trainer: R² as scikit-learn computes it, packed and grid
models agreeing with separate fits, on real data (scikit-learn's diabetes table)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.metrics import r2_score

from tuner.data import (
    CLASSIFICATION,
    NUMERIC,
    REGRESSION,
    Dataset,
    Feature,
    Task,
    fold_arrays,
    repeated_folds,
)
from tuner.study import BUILTIN_STUDIES_DIR, load_definitions
from tuner.training import STRATEGIES, CrossValidation, FoldTrainer, build_model, fold_seed

pytestmark = pytest.mark.slow

DEFINITION = dataclasses.replace(
    load_definitions(BUILTIN_STUDIES_DIR)["2layer"], batch_norm=False, dropout=0.0
)


def diabetes() -> Dataset:
    x, y = load_diabetes(return_X_y=True)
    task = Task(kind=REGRESSION, classes=(), features=(Feature("x", NUMERIC, 10),), target="y")
    return Dataset(
        x[:400].astype(np.float32),
        y[:400].astype(np.float32),
        x[400:].astype(np.float32),
        y[400:].astype(np.float32),
        task,
    )


def smooth(n: int = 1500) -> Dataset:
    """A smooth function of ten inputs plus noise (R² about 0.9 reachable): trainers that
    differ only in batch order and initial weights land close together on it."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 10)).astype(np.float32)
    y = (x @ rng.normal(size=10) + np.sin(2 * x[:, 0]) + 0.3 * rng.normal(size=n)) * 50 + 300
    task = Task(kind=REGRESSION, classes=(), features=(Feature("x", NUMERIC, 10),), target="y")
    cut = int(n * 0.8)
    y = y.astype(np.float32)
    return Dataset(x[:cut], y[:cut], x[cut:], y[cut:], task)


def test_the_models_head_follows_the_task() -> None:
    regression = build_model(DEFINITION.for_task(diabetes().task), (16, 8), seed=0)
    assert regression.input_shape == (None, 10) and regression.output_shape == (None, 1)
    assert regression.layers[-1].activation.__name__ == "linear"
    classes = Task(kind=CLASSIFICATION, classes=("a", "b", "c"), features=diabetes().task.features)
    classifier = build_model(DEFINITION.for_task(classes), (16, 8), seed=0)
    assert classifier.output_shape == (None, 3)


def test_a_folds_r2_is_scikit_learns_on_its_validation_rows() -> None:
    dataset = diabetes()
    folds = repeated_folds(dataset.y_train, 3, [42], dataset.task)
    arrays = fold_arrays(dataset, folds)
    trainer = FoldTrainer(DEFINITION.for_task(dataset.task), (64, 32), STRATEGIES["fast"])
    result = trainer.train_fold(arrays, arrays.splits[0], fold=0, epochs=25, seed=3)
    model = trainer._fast.model  # the fold's trained model
    _, validation = arrays.splits[0]
    predicted = np.asarray(model(arrays.x[validation]))[:, 0]
    assert result.accuracy == pytest.approx(r2_score(arrays.y[validation], predicted), abs=1e-4)
    # ... and the same in the target's own units: standardising both sides leaves R² be.
    raw = dataset.y_train[folds[0][1]]
    back = predicted * dataset.y_train[folds[0][0]].std() + dataset.y_train[folds[0][0]].mean()
    assert result.accuracy == pytest.approx(r2_score(raw, back), abs=1e-3)
    assert 0.2 < result.accuracy < 0.8  # learnt, and no leakage could make it perfect


def _fold_scores(name: str, dataset: Dataset, folds: list, units: tuple[int, ...]) -> float:
    """One point's mean CV R² by the trainer ``name``, each fold from the initial weights
    CrossValidation gives it (so trainers differ only in batch order and rounding)."""
    evaluate = CrossValidation(
        DEFINITION, dataset, folds, epochs=8, base_seed=0, device="cpu", strategy=STRATEGIES[name]
    )
    trainer = FoldTrainer(evaluate.definition, units, STRATEGIES[name])
    splits = evaluate.arrays.splits
    if name == "packed":
        done = trainer.train_packed(evaluate.arrays, dict(enumerate(splits)), epochs=8, base_seed=0)
        return float(np.mean([done[f].accuracy for f in range(len(splits))]))
    return float(
        np.mean(
            [
                trainer.train_fold(
                    evaluate.arrays, split, fold=f, epochs=8, seed=fold_seed(0, units, f)
                ).accuracy
                for f, split in enumerate(splits)
            ]
        )
    )


@pytest.mark.parametrize("strategy", ["keras", "packed"])
def test_every_trainer_scores_a_regression_alike(strategy: str) -> None:
    """Per-point CV R² of each trainer within noise of the fast trainer's."""
    dataset = smooth()
    folds = repeated_folds(dataset.y_train, 3, [42], dataset.task)
    for units in [(64, 32), (128, 32)]:
        reference = _fold_scores("fast", dataset, folds, units)
        other = _fold_scores(strategy, dataset, folds, units)
        assert 0.6 < other < 1.0
        assert other == pytest.approx(reference, abs=0.02)


def test_the_grid_model_scores_a_regression_like_separate_fits() -> None:
    from tuner.training import initial_weights, training_loops
    from tuner.training._models import build_grid_model, grid_weights

    dataset = smooth()
    folds = repeated_folds(dataset.y_train, 3, [42], dataset.task)
    arrays = fold_arrays(dataset, folds)
    definition = DEFINITION.for_task(dataset.task)
    points = [(64, 32), (128, 32), (64, 8)]
    grid = build_grid_model(definition, points, 3)
    grid_weights(
        grid,
        [[initial_weights(definition, u, fold_seed(0, u, f)) for f in range(3)] for u in points],
        3,
    )
    histories = (
        training_loops()
        .packed(grid, definition, 3, points=len(points))
        .fit_folds(arrays.x, arrays.y, arrays.splits, epochs=8, seed=1)
    )
    for p, units in enumerate(points):
        together = np.mean([histories[f * len(points) + p]["val_accuracy"][-1] for f in range(3)])
        assert 0.4 < together < 1.0
        assert together == pytest.approx(_fold_scores("fast", dataset, folds, units), abs=0.02)
