"""The final fit: retrain a study's winner on all training rows, test it, keep the result.

Numeric features and a regression's target are standardised with all training rows'
statistics, the test rows with the same (:func:`tuner.data.final_arrays`).

With ``--final-seeds S`` the winner is trained S times, each from its own seed (the
first one is the single fit of before), and every fit's test numbers and curves are kept.

The result is stored on the study itself (a user attribute), so any machine that can
reach the storage can report without retraining; the model goes to the artifact folder
in Keras' native ``.keras`` format, written atomically so a full disk never leaves a
half-written file behind.
"""

from __future__ import annotations

import os
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from tuner.data import Dataset, final_arrays
from tuner.errors import TunerError
from tuner.study import FinalFit, SeedFit, StudyConfig, schema
from tuner.training._backend import training_loops
from tuner.training._cross_validation import fold_seed
from tuner.training._models import build_model

QUANTILES = 201


def weight_quantiles(model: Any) -> dict[str, list[float]]:
    """Per Dense layer, evenly spaced quantiles of its kernel: its distribution, compactly."""
    import keras

    levels = np.linspace(0.0, 1.0, QUANTILES)
    return {
        layer.name: np.quantile(np.asarray(layer.kernel), levels).astype(float).tolist()
        for layer in model.layers
        if isinstance(layer, keras.layers.Dense)
    }


def save_model_atomically(model: Any, path: Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".keras")
    os.close(handle)
    try:
        model.save(temporary)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        raise TunerError(f"cannot save the final model to {path}: {exc.strerror}") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def final_seed(fold_seed_: int, index: int) -> int:
    """The seed of a winner's ``index``-th final fit (from 0).

    The first is the study's fold seed itself, so one final fit is exactly the fit of
    tuner before ``--final-seeds``; the others derive from it reproducibly.
    """
    return fold_seed_ if index == 0 else zlib.crc32(f"{fold_seed_}:final:{index}".encode())


def _fit_one(
    config: StudyConfig, params: dict[str, Any], dataset: Dataset, seed: int
) -> tuple[Any, SeedFit]:
    """Train the winner once from ``seed`` on every training image, tested on the test set.

    The winner trains with its own settings (``definition.at(params)``: a grid axis'
    value, such as its learning rate or Dropout rate, not the definition's default).
    """
    started = time.perf_counter()
    units = config.definition.units_of(params)
    definition = config.definition.at(params).for_task(dataset.task)
    dataset, _ = final_arrays(dataset)
    model = build_model(definition, units, seed=fold_seed(seed, units, -1))
    trainer = training_loops().single(model, definition.protocol)
    history = trainer.fit(
        dataset.x_train,
        dataset.y_train,
        epochs=config.epochs_of(params),
        validation=(dataset.x_test, dataset.y_test),
        seed=seed,
    )
    test_loss, test_accuracy = trainer.evaluate(dataset.x_test, dataset.y_test)
    curves = {key: [float(v) for v in history[key]] for key in schema.HISTORY_KEYS}
    return model, SeedFit(
        seed=seed,
        test_loss=float(test_loss),
        test_accuracy=float(test_accuracy),
        train_loss=curves["loss"][-1],
        seconds=time.perf_counter() - started,
        history=curves,
    )


def run_final_fit(
    study: optuna.Study,
    config: StudyConfig,
    dataset: Dataset,
    artifacts: Path,
    *,
    seeds: int = 1,
    earlier: FinalFit | None = None,
    on_fit: Callable[[SeedFit], None] | None = None,
) -> FinalFit:
    """Retrain the best grid point on every training image, validating on the test set.

    Args:
        study: The complete study.
        config: Its recorded settings.
        dataset: Its data (verified against the fingerprint).
        artifacts: Where the first fit's model is saved (``STUDY/final.keras``).
        seeds: How many fits, each from its own seed (:func:`final_seed`).
        earlier: A stored record of the same winner with fewer fits: kept, and only the
            missing seeds are trained.
        on_fit: Told about each fit as it ends.

    Returns:
        The record (also stored on the study): the first fit's numbers, curves, model and
        weights, and every seed's fit.
    """
    best = study.best_trial
    units = config.definition.units_of(best.params)
    if earlier is None:
        model, first = _fit_one(config, best.params, dataset, final_seed(config.fold_seed, 0))
        if on_fit:
            on_fit(first)
        model_path = artifacts / config.study_name / "final.keras"
        save_model_atomically(model, model_path)
        fit = FinalFit(
            trial_number=best.number,
            units=list(units),
            epochs=config.epochs_of(best.params),
            history=first.history,
            test_loss=first.test_loss,
            test_accuracy=first.test_accuracy,
            train_loss=first.train_loss,
            seconds=first.seconds,
            model_path=str(model_path),
            weight_quantiles=weight_quantiles(model),
            seed_fits=(first,),
        )
    else:
        fit = earlier
    # Stored after every fit, so an interrupted run keeps the fits it finished (the next
    # report resumes from them: ``earlier``).
    study.set_user_attr(schema.FINAL_FIT, fit.to_dict())
    runs = fit.runs
    for index in range(len(runs), seeds):
        _, more = _fit_one(config, best.params, dataset, final_seed(config.fold_seed, index))
        if on_fit:
            on_fit(more)
        runs.append(more)
        fit = replace(fit, seed_fits=tuple(runs))
        study.set_user_attr(schema.FINAL_FIT, fit.to_dict())
    return fit
