"""The cross-validation objective: one grid point, k folds, mean validation accuracy.

Everything the report and the dashboard later need is recorded on the trial as it
happens: each fold's accuracy, loss and per-epoch curves, and the running mean as an
intermediate value, so a half-finished trial already shows progress.
"""

from __future__ import annotations

import math
import os
import socket
import time
import zlib
from dataclasses import asdict, dataclass
from typing import Protocol

import keras
import numpy as np
import optuna

from tuner.data import Dataset
from tuner.definitions import TRAINERS, StudyDefinition
from tuner.model import build_model
from tuner.storage import with_retries
from tuner.trainer import FastTrainer

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


class TrainingListener(Protocol):
    """Told about fold and epoch boundaries; the progress display implements it."""

    def fold_started(self, fold: int, n_folds: int, epochs: int, packed: int = 1) -> None: ...

    def epoch_ended(self, epoch: int, logs: dict[str, float]) -> None: ...


class NonFiniteLossError(ValueError):
    """Training diverged; re-running the same point would diverge again, so no retry."""


@dataclass(frozen=True)
class FoldResult:
    fold: int
    accuracy: float
    loss: float
    seconds: float
    history: dict[str, list[float]]


class _EpochRelay(keras.callbacks.Callback):
    def __init__(self, listener: TrainingListener) -> None:
        super().__init__()
        self.listener = listener

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.listener.epoch_ended(epoch + 1, dict(logs or {}))


def fold_seed(base_seed: int, units: tuple[int, ...], fold: int) -> int:
    """A reproducible initialisation seed per (grid point, fold), independent of run order."""
    return zlib.crc32(f"{base_seed}:{units}:{fold}".encode())


class FoldTrainer:
    """Trains the folds of one grid point, each from its own seeded initial weights.

    ``packed`` (the default) trains the folds together (:mod:`tuner.packed`); ``fast``
    is :class:`tuner.trainer.FastTrainer` per fold, traced once per grid point (also
    used for a single remaining fold); ``keras`` is a plain ``model.fit`` per fold, kept
    as the reference the benchmark compares against.
    """

    def __init__(self, definition: StudyDefinition, units: tuple[int, ...], kind: str) -> None:
        if kind not in TRAINERS:
            raise ValueError(f"unknown trainer {kind!r}; choose one of {', '.join(TRAINERS)}")
        self.definition, self.units, self.kind = definition, units, kind
        self._fast: FastTrainer | None = None

    def _fit(
        self, dataset: Dataset, split: tuple[np.ndarray, np.ndarray], epochs: int, seed: int,
        listener: TrainingListener | None,
    ) -> dict[str, list[float]]:  # fmt: skip
        train_index, val_index = split
        x_train, y_train = dataset.x_train[train_index], dataset.y_train[train_index]
        validation = (dataset.x_train[val_index], dataset.y_train[val_index])
        model = build_model(self.definition, self.units, seed=seed)
        if self.kind == "keras":
            callbacks = [_EpochRelay(listener)] if listener else []
            return model.fit(
                x_train, y_train, batch_size=self.definition.protocol.batch_size,
                epochs=epochs, validation_data=validation, shuffle=True, verbose=0,
                callbacks=callbacks,
            ).history  # fmt: skip
        if self._fast is None:
            self._fast = FastTrainer(model, self.definition.protocol)
        else:
            self._fast.reset(model.get_weights())
        return self._fast.fit(
            x_train, y_train, epochs=epochs, validation=validation, seed=seed,
            on_epoch_end=listener.epoch_ended if listener else None,
        )  # fmt: skip

    def train_packed(
        self,
        dataset: Dataset,
        splits: dict[int, tuple[np.ndarray, np.ndarray]],
        *,
        epochs: int,
        base_seed: int,
        n_folds: int | None = None,
        listener: TrainingListener | None = None,
    ) -> dict[int, FoldResult]:
        """Train the given folds at once, each from the weights a separate fit would use."""
        from tuner.packed import PackedTrainer, build_packed_model, pack_weights

        started = time.perf_counter()
        folds = sorted(splits)
        n_folds = n_folds or len(folds)
        model = build_packed_model(self.definition, self.units, len(folds))
        pack_weights(
            model,
            [
                build_model(self.definition, self.units, seed=fold_seed(base_seed, self.units, f))
                for f in folds
            ],
        )
        if listener:
            listener.fold_started(folds[0] + 1, n_folds, epochs, packed=len(folds))
        histories = PackedTrainer(model, self.definition, len(folds)).fit_folds(
            dataset.x_train, dataset.y_train, [splits[f] for f in folds], epochs=epochs,
            seed=fold_seed(base_seed, self.units, folds[0]),
            on_epoch_end=listener.epoch_ended if listener else None,
        )  # fmt: skip
        seconds = (time.perf_counter() - started) / len(folds)
        results = {}
        for fold, history in zip(folds, histories, strict=True):
            if not all(math.isfinite(v) for v in history["loss"]):
                raise NonFiniteLossError(f"training loss became non-finite on fold {fold}")
            results[fold] = FoldResult(
                fold=fold, accuracy=history["val_accuracy"][-1], loss=history["val_loss"][-1],
                seconds=seconds, history=history,
            )  # fmt: skip
        return results

    def train_fold(
        self,
        dataset: Dataset,
        split: tuple[np.ndarray, np.ndarray],
        *,
        fold: int,
        epochs: int,
        seed: int,
        listener: TrainingListener | None = None,
    ) -> FoldResult:
        """Train fresh weights on one fold's training part, validate on its held-out part."""
        started = time.perf_counter()
        history = self._fit(dataset, split, epochs, seed, listener)
        curves = {key: [float(v) for v in history[key]] for key in HISTORY_KEYS}
        if not all(math.isfinite(v) for v in curves["loss"]):
            raise NonFiniteLossError(f"training loss became non-finite on fold {fold}")
        return FoldResult(
            fold=fold,
            accuracy=curves["val_accuracy"][-1],
            loss=curves["val_loss"][-1],
            seconds=time.perf_counter() - started,
            history=curves,
        )


def completed_folds(trial: optuna.trial.FrozenTrial) -> dict[int, FoldResult]:
    """Folds a trial (or an earlier, interrupted attempt at its point) already finished."""
    results = {}
    for key, value in trial.user_attrs.items():
        if key.startswith("fold_") and key[5:].isdigit():
            results[int(key[5:])] = FoldResult(**value)
    return results


def record(trial: optuna.Trial, **attrs: object) -> None:
    """Set user attributes, riding out a storage blip rather than losing the fold."""
    for key, value in attrs.items():
        with_retries(lambda: trial.set_user_attr(key, value), f"recording {key}")  # noqa: B023


def evaluate(
    trial: optuna.Trial,
    definition: StudyDefinition,
    dataset: Dataset,
    folds: list[tuple[np.ndarray, np.ndarray]],
    *,
    epochs: int,
    base_seed: int,
    device: str,
    reuse: dict[int, FoldResult] | None = None,
    listener: TrainingListener | None = None,
    trainer: str = "packed",
) -> float:
    """Mean validation accuracy over the folds; folds in ``reuse`` are not trained again."""
    units = tuple(
        int(trial.suggest_categorical(name, list(values)))
        for name, values in definition.grid.items()
    )
    record(
        trial,
        units=list(units),
        host=socket.gethostname(),
        pid=os.getpid(),
        device=device,
        trainer=trainer,
    )
    started = time.perf_counter()
    fold_trainer = FoldTrainer(definition, units, trainer)
    reuse = reuse or {}
    pending = {fold: split for fold, split in enumerate(folds) if fold not in reuse}
    if trainer == "packed" and len(pending) > 1:
        reuse = {**reuse, **fold_trainer.train_packed(
            dataset, pending, epochs=epochs, base_seed=base_seed, listener=listener,
            n_folds=len(folds),
        )}  # fmt: skip
    results: list[FoldResult] = []
    for fold, split in enumerate(folds):
        if fold in reuse:
            result = reuse[fold]
        else:
            if listener:
                listener.fold_started(fold + 1, len(folds), epochs)
            result = fold_trainer.train_fold(
                dataset,
                split,
                fold=fold,
                epochs=epochs,
                seed=fold_seed(base_seed, units, fold),
                listener=listener,
            )
        results.append(result)
        record(trial, **{f"fold_{fold}": asdict(result)})
        running_mean = float(np.mean([r.accuracy for r in results]))
        with_retries(lambda: trial.report(running_mean, step=fold), "reporting a fold")  # noqa: B023

    accuracies = [r.accuracy for r in results]
    losses = [r.loss for r in results]
    record(
        trial,
        fold_accuracies=accuracies,
        fold_losses=losses,
        accuracy_std=float(np.std(accuracies)),
        loss_mean=float(np.mean(losses)),
        loss_std=float(np.std(losses)),
        train_seconds=float(sum(r.seconds for r in results)),
        wall_seconds=time.perf_counter() - started,
    )
    keras.backend.clear_session()
    return float(np.mean(accuracies))
