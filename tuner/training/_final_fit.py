"""The final fit: retrain a study's winner on all training images, test it, keep the result.

The result is stored on the study itself (a user attribute), so any machine that can
reach the storage can report without retraining; the model goes to the artifact folder
in Keras' native ``.keras`` format, written atomically so a full disk never leaves a
half-written file behind.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from tuner.data import Dataset
from tuner.errors import TunerError
from tuner.study import FinalFit, StudyConfig, schema
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


def run_final_fit(
    study: optuna.Study, config: StudyConfig, dataset: Dataset, artifacts: Path
) -> FinalFit:
    """Retrain the best grid point on every training image, validating on the test set."""
    best = study.best_trial
    units = config.definition.units_of(best.params)
    started = time.perf_counter()
    model = build_model(config.definition, units, seed=fold_seed(config.fold_seed, units, -1))
    trainer = training_loops().single(model, config.definition.protocol)
    history = trainer.fit(
        dataset.x_train,
        dataset.y_train,
        epochs=config.epochs,
        validation=(dataset.x_test, dataset.y_test),
        seed=config.fold_seed,
    )
    test_loss, test_accuracy = trainer.evaluate(dataset.x_test, dataset.y_test)
    model_path = artifacts / config.study_name / "final.keras"
    save_model_atomically(model, model_path)
    curves = {key: [float(v) for v in history[key]] for key in schema.HISTORY_KEYS}
    fit = FinalFit(
        trial_number=best.number,
        units=list(units),
        epochs=config.epochs,
        history=curves,
        test_loss=float(test_loss),
        test_accuracy=float(test_accuracy),
        train_loss=curves["loss"][-1],
        seconds=time.perf_counter() - started,
        model_path=str(model_path),
        weight_quantiles=weight_quantiles(model),
    )
    study.set_user_attr(schema.FINAL_FIT, fit.to_dict())
    return fit
