"""The task's score per epoch: accuracy as the loops count it, or R² from the loss.

The trainers train with the task's loss (:mod:`tuner.training._models`) and count hits
for a classification. For a regression the loss is the mean squared error of the
(standardised) target, so the score follows from it without another pass over the data:
R² = 1 - MSE / Var(y) over the same rows, with the population variance of those rows'
targets, exactly scikit-learn's ``r2_score`` (and the same in standardised or original
units, since both sides scale alike). The score keeps the history keys ``accuracy`` and
``val_accuracy`` (:data:`tuner.study.schema.HISTORY_KEYS`), so stored studies, live
curves and reports read one key whatever the task.

This module imports no framework: every backend's loops use it.
"""

from __future__ import annotations

import numpy as np

TINY_VARIANCE = 1e-12
"""Floor of a fold's target variance: a constant validation fold scores R² <= 0, not NaN."""


def is_regression(y: np.ndarray) -> bool:
    """Targets that are values (floats) train a regression; class ids (integers) do not."""
    return np.asarray(y).dtype.kind == "f"


class EpochScores:
    """Fills in a regression's per-epoch R² from its losses; a classification's logs pass.

    Args:
        y_train: The targets the model trains on (None: no training score to derive).
        y_val: The targets it is validated on.
    """

    def __init__(self, y_train: np.ndarray | None, y_val: np.ndarray) -> None:
        self.regression = is_regression(y_val)
        # Only a regression's score needs them: class ids are never reduced here.
        self.train_variance = (
            _variance(y_train) if self.regression and y_train is not None else None
        )
        self.val_variance = _variance(y_val) if self.regression else 1.0

    def logs(self, logs: dict[str, float]) -> dict[str, float]:
        """``logs`` with ``accuracy``/``val_accuracy`` holding R² for a regression."""
        if not self.regression:
            return logs
        if "loss" in logs and self.train_variance is not None:
            logs["accuracy"] = 1.0 - logs["loss"] / self.train_variance
        if "val_loss" in logs:
            logs["val_accuracy"] = 1.0 - logs["val_loss"] / self.val_variance
        return logs

    def history(self, history: dict[str, list[float]]) -> dict[str, list[float]]:
        """A whole Keras history (``model.fit``'s) with the regression's R² filled in."""
        if not self.regression:
            return history
        epochs = len(history["loss"])
        per_epoch = [
            self.logs({key: history[key][epoch] for key in ("loss", "val_loss") if key in history})
            for epoch in range(epochs)
        ]
        return {**history, **{key: [logs[key] for logs in per_epoch] for key in per_epoch[0]}}

    def score(self, loss: float, hits: float) -> float:
        """The score of an evaluation on the validation rows: R² from ``loss``, or ``hits``."""
        return 1.0 - loss / self.val_variance if self.regression else hits


def _variance(y: np.ndarray) -> float:
    return max(float(np.var(np.asarray(y, dtype=np.float64))), TINY_VARIANCE)
