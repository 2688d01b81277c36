"""The cross-validation objective: one grid point, k folds, mean validation accuracy.

Everything the report and the dashboard later need is recorded on the trial as it
happens: while it trains, the point's learning curve (per epoch, its mean validation
accuracy over the folds, as the trial's intermediate values); as each fold ends, its
accuracy, loss and per-epoch curves. A running trial therefore shows its progress in
the storage, to any machine.
"""

from __future__ import annotations

import math
import os
import socket
import time
import zlib
from collections.abc import Callable
from typing import Protocol

import keras
import numpy as np

from tuner.data import Dataset, FoldArrays, fold_arrays
from tuner.errors import PermanentTrialError
from tuner.scheduling import ClaimedTrial, TrialRecorder
from tuner.stats import corrected_interval, holdout_ratio
from tuner.study import FoldResult, StudyDefinition, schema
from tuner.training._backend import active_backend, release_compiled, training_loops
from tuner.training._models import (
    build_grid_model,
    build_model,
    build_packed_model,
    grid_learning_rate_scales,
    grid_weights,
    initial_weights_of,
    pack_weights,
)
from tuner.training._scores import EpochScores
from tuner.training._strategies import STRATEGIES, FoldLoop, TrainingStrategy

HISTORY_KEYS = schema.HISTORY_KEYS


class TrainingListener(Protocol):
    """Told about fold and epoch boundaries; the progress display implements it."""

    def fold_started(self, fold: int, n_folds: int, epochs: int, packed: int = 1) -> None: ...

    def epoch_ended(self, epoch: int, logs: dict[str, float]) -> None: ...


class NonFiniteLossError(PermanentTrialError):
    """Training diverged; re-running the same point would diverge again, so no retry."""


FoldEpoch = Callable[[dict[int, float], int], None]
"""Told, at an epoch's end (from 1), the validation accuracy each training fold reached."""


class PointCurve:
    """One grid point's learning curve, recorded on its trial while it trains.

    At epoch ``e`` the value is the point's mean validation accuracy over the folds that
    have reached epoch ``e`` (all of them once training ends: the trial's value is the
    last epoch's). Folds reused from an earlier attempt count from the start.
    """

    def __init__(self, recorder: TrialRecorder, folds: int) -> None:
        self.recorder = recorder
        self.by_fold: list[dict[int, float]] = [{} for _ in range(folds)]

    def at(self, epoch: int) -> float:
        """The mean over the folds that reached ``epoch``."""
        return float(np.mean([fold[epoch] for fold in self.by_fold if epoch in fold]))

    def folds_reached(self, values: dict[int, float], epoch: int) -> None:
        """Folds (by index) reached ``epoch`` with these validation accuracies."""
        for fold, value in values.items():
            self.by_fold[fold][epoch] = value
        self.recorder.record_epoch(epoch, self.at(epoch))

    def fold_known(self, fold: int, history: dict[str, list[float]]) -> None:
        """A fold trained already (reused): its whole curve counts."""
        epochs = range(1, len(history["val_accuracy"]) + 1)
        self.by_fold[fold].update(zip(epochs, history["val_accuracy"], strict=True))
        for epoch in epochs:
            self.recorder.record_epoch(epoch, self.at(epoch))


def _epoch_relay(
    listener: TrainingListener | None, fold: int, on_fold_epoch: FoldEpoch | None
) -> Callable[[int, dict[str, float]], None]:
    """One fold's epoch callback: the progress display, and the point's curve."""

    def relay(epoch: int, logs: dict[str, float]) -> None:
        if listener:
            listener.epoch_ended(epoch, logs)
        if on_fold_epoch:
            on_fold_epoch({fold: float(logs["val_accuracy"])}, epoch)

    return relay


class _KerasEpochs(keras.callbacks.Callback):
    def __init__(self, relay: Callable[[int, dict[str, float]], None]) -> None:
        super().__init__()
        self.relay = relay

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.relay(epoch + 1, dict(logs or {}))


def fold_seed(base_seed: int, units: tuple[int, ...], fold: int) -> int:
    """A reproducible initialisation seed per (grid point, fold), independent of run order."""
    return zlib.crc32(f"{base_seed}:{units}:{fold}".encode())


class FoldTrainer:
    """Trains the folds of one grid point, each from its own seeded initial weights.

    A strategy that packs folds trains them together (:meth:`train_packed`, the
    backend's packed loop); otherwise each fold is trained alone (:meth:`train_fold`),
    with the backend's compiled single-model loop, traced once per grid point (also used
    for a single remaining fold), or, for a strategy without a compiled loop, a plain
    ``model.fit``, kept as the reference the benchmark compares against.
    """

    def __init__(
        self, definition: StudyDefinition, units: tuple[int, ...], strategy: TrainingStrategy
    ) -> None:
        self.definition, self.units, self.strategy = definition, units, strategy
        self._fast: FoldLoop | None = None

    def _fit(
        self,
        arrays: FoldArrays,
        split: tuple[np.ndarray, np.ndarray],
        epochs: int,
        seed: int,
        relay: Callable[[int, dict[str, float]], None],
    ) -> dict[str, list[float]]:
        train_index, val_index = split
        x_train, y_train = arrays.x[train_index], arrays.y[train_index]
        validation = (arrays.x[val_index], arrays.y[val_index])
        model = build_model(self.definition, self.units, seed=seed)
        if not self.strategy.compiled_loop:
            scores = EpochScores(y_train, validation[1])
            callbacks = [_KerasEpochs(lambda epoch, logs: relay(epoch, scores.logs(logs)))]
            fitted: dict[str, list[float]] = model.fit(
                x_train,
                y_train,
                batch_size=self.definition.protocol.batch_size,
                epochs=epochs,
                validation_data=validation,
                shuffle=True,
                verbose=0,
                callbacks=callbacks,
            ).history
            return scores.history(fitted)
        if self._fast is None:
            self._fast = training_loops().single(model, self.definition.protocol)
        else:
            self._fast.reset(model.get_weights())
        return self._fast.fit(
            x_train,
            y_train,
            epochs=epochs,
            validation=validation,
            seed=seed,
            on_epoch_end=relay,
        )

    def train_packed(
        self,
        arrays: FoldArrays,
        splits: dict[int, tuple[np.ndarray, np.ndarray]],
        *,
        epochs: int,
        base_seed: int,
        n_folds: int | None = None,
        listener: TrainingListener | None = None,
        on_fold_epoch: FoldEpoch | None = None,
    ) -> dict[int, FoldResult]:
        """Train the given folds at once, each from the weights a separate fit would use."""
        started = time.perf_counter()
        folds = sorted(splits)
        n_folds = n_folds or len(folds)
        model = build_packed_model(self.definition, self.units, len(folds))
        pack_weights(
            model,
            initial_weights_of(
                self.definition,
                [self.units] * len(folds),
                [fold_seed(base_seed, self.units, f) for f in folds],
            ),
        )
        if listener:
            listener.fold_started(folds[0] + 1, n_folds, epochs, packed=len(folds))
        packed = training_loops().packed
        histories = packed(model, self.definition, len(folds)).fit_folds(
            arrays.x,
            arrays.y,
            [splits[f] for f in folds],
            epochs=epochs,
            seed=fold_seed(base_seed, self.units, folds[0]),
            on_epoch_end=listener.epoch_ended if listener else None,
            on_models_epoch=(
                (lambda epoch, values: on_fold_epoch(dict(zip(folds, values, strict=True)), epoch))
                if on_fold_epoch
                else None
            ),
        )
        seconds = (time.perf_counter() - started) / len(folds)
        results = {}
        for fold, history in zip(folds, histories, strict=True):
            if not all(math.isfinite(v) for v in history["loss"]):
                raise NonFiniteLossError(f"training loss became non-finite on fold {fold}")
            results[fold] = FoldResult(
                fold=fold,
                accuracy=history["val_accuracy"][-1],
                loss=history["val_loss"][-1],
                seconds=seconds,
                history=history,
            )
        return results

    def train_fold(
        self,
        arrays: FoldArrays,
        split: tuple[np.ndarray, np.ndarray],
        *,
        fold: int,
        epochs: int,
        seed: int,
        listener: TrainingListener | None = None,
        on_fold_epoch: FoldEpoch | None = None,
    ) -> FoldResult:
        """Train fresh weights on one fold's training part, validate on its held-out part."""
        started = time.perf_counter()
        relay = _epoch_relay(listener, fold, on_fold_epoch)
        history = self._fit(arrays, split, epochs, seed, relay)
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


class CrossValidation:
    """The ``evaluate`` callable of a study: k-fold CV of one claimed grid point.

    Args:
        definition: The study's definition (model, protocol); its models are shaped for
            the data's task.
        dataset: The study's data (already verified against its fingerprint); numeric
            features and a regression's target are standardised per fold
            (:func:`tuner.data.fold_arrays`).
        folds: (train, validation) indices per fold, the same for every trial; with
            repeated CV, every repetition's k folds in turn (R*k pairs).
        epochs: Epochs per fold.
        base_seed: The study's fold seed; initial weights derive from it per point.
        device: Where training runs, recorded on each trial.
        strategy: How claimed points train (see :class:`TrainingStrategy`); one that
            trains points together has its batches trained as one grid model
            (:meth:`evaluate_batch`).
        listener: Told about fold and epoch boundaries (progress).
    """

    def __init__(
        self,
        definition: StudyDefinition,
        dataset: Dataset,
        folds: list[tuple[np.ndarray, np.ndarray]],
        *,
        epochs: int,
        base_seed: int,
        device: str,
        strategy: TrainingStrategy = STRATEGIES["grid"],
        listener: TrainingListener | None = None,
    ) -> None:
        self.definition = definition.for_task(dataset.task)
        self.dataset = dataset
        self.folds = folds
        # Each fold's rows as it trains on them (scaled by its own training part).
        self.arrays = fold_arrays(dataset, folds)
        self.epochs = epochs
        self.base_seed = base_seed
        self.device = device
        self.strategy = strategy
        self.listener = listener

    def _record_start(self, claim: ClaimedTrial, recorder: TrialRecorder) -> None:
        recorder.set_user_attrs(
            **{
                schema.UNITS: list(claim.units),
                schema.HOST: socket.gethostname(),
                schema.PID: os.getpid(),
                schema.DEVICE: self.device,
                schema.TRAINER: self.strategy.name,
                schema.BACKEND: active_backend(),
            }
        )

    def evaluate_batch(
        self, claims: list[ClaimedTrial], recorders: list[TrialRecorder]
    ) -> list[float | Exception]:
        """Train several grid points with all their folds as one grid model (grid packing).

        Each point's math equals a separate fit from the same initial weights, up to float
        rounding, with one difference: within a fold every point sees the same batch
        order (common random numbers, which also makes their comparison fairer). Points
        that reuse folds of an earlier attempt, and other strategies' points, run one by one.
        """
        if not self.strategy.trains_together or any(c.reused_folds for c in claims):
            return [self._one_of_many(c, r) for c, r in zip(claims, recorders, strict=True)]
        for claim, recorder in zip(claims, recorders, strict=True):
            self._record_start(claim, recorder)
        started = time.perf_counter()
        curves = [PointCurve(recorder, len(self.folds)) for recorder in recorders]
        histories = self._train_grid(
            [claim.units for claim in claims],
            curves,
            [self.definition.at(claim.params) for claim in claims],
            # One training group per batch: its points share their epochs.
            self.definition.epochs_at(claims[0].params, self.epochs),
        )
        for recorder in recorders:
            recorder.flush_curve()  # one write: the batch's recorders share a writer
        seconds = (time.perf_counter() - started) / (len(claims) * len(self.folds))
        outcomes: list[float | Exception] = []
        for point, recorder in enumerate(recorders):
            results = []
            for fold in range(len(self.folds)):
                history = histories[fold * len(claims) + point]
                results.append(
                    FoldResult(
                        fold=fold,
                        accuracy=history["val_accuracy"][-1],
                        loss=history["val_loss"][-1],
                        seconds=seconds,
                        history=history,
                    )
                )
            bad = [r.fold for r in results if not all(math.isfinite(v) for v in r.history["loss"])]
            if bad:
                # The other points of the batch trained on untouched: only this one fails.
                outcomes.append(
                    NonFiniteLossError(f"training loss became non-finite on fold {bad[0]}")
                )
                continue
            outcomes.append(self._record_folds(recorder, results, started))
        release_compiled()
        return outcomes

    def _one_of_many(self, claim: ClaimedTrial, recorder: TrialRecorder) -> float | Exception:
        try:
            return self(claim, recorder)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            return exc

    def _train_grid(
        self,
        points: list[tuple[int, ...]],
        curves: list[PointCurve],
        settings: list[StudyDefinition],
        epochs: int,
    ) -> list[dict[str, list[float]]]:
        """Histories of every (fold, point), fold-major; each point's curve recorded live.

        ``settings`` are the points' own definitions; the scheduler hands out batches of
        one training group, so they differ only in per-point (packed) settings.
        """
        folds = len(self.folds)
        shared = settings[0]
        model = build_grid_model(self.definition, points, folds, settings)
        scales = grid_learning_rate_scales(model, settings, shared.protocol.learning_rate)
        every = [(units, f) for units in points for f in range(folds)]
        weights = initial_weights_of(
            self.definition,
            [units for units, _ in every],
            [fold_seed(self.base_seed, units, f) for units, f in every],
        )
        grid_weights(
            model, [weights[p * folds : (p + 1) * folds] for p in range(len(points))], folds
        )
        if self.listener:
            self.listener.fold_started(1, folds, epochs, packed=folds)

        def models_reached(epoch: int, values: list[float]) -> None:
            for point, curve in enumerate(curves):
                by_fold = {f: values[f * len(points) + point] for f in range(folds)}
                curve.folds_reached(by_fold, epoch)

        packed = training_loops().packed
        loop = packed(model, shared, folds, points=len(points), learning_rate_scales=scales)
        return loop.fit_folds(
            self.arrays.x,
            self.arrays.y,
            self.arrays.splits,
            epochs=epochs,
            # One batch order per fold, shared by every point (common random numbers).
            seed=zlib.crc32(f"{self.base_seed}:grid".encode()),
            on_epoch_end=self.listener.epoch_ended if self.listener else None,
            on_models_epoch=models_reached,
        )

    def _record_folds(
        self, recorder: TrialRecorder, results: list[FoldResult], started: float
    ) -> float:
        for done in range(1, len(results) + 1):
            self._record_fold(recorder, results[:done])
        return self._record_summary(recorder, results, started)

    @staticmethod
    def _record_fold(recorder: TrialRecorder, results: list[FoldResult]) -> None:
        """Record the last of ``results`` (its curves went to the trial while it trained)."""
        latest = results[-1]
        recorder.set_user_attrs(**{schema.fold_key(latest.fold): latest.to_dict()})

    def _record_summary(
        self, recorder: TrialRecorder, results: list[FoldResult], started: float
    ) -> float:
        accuracies = [r.accuracy for r in results]
        losses = [r.loss for r in results]
        if len(results) > 1:
            # n_test/n_train of one fold of k; repeated CV adds scores, not a new ratio.
            ratio = holdout_ratio(self.definition.protocol.folds)
            interval = corrected_interval(accuracies, ratio)
            recorder.set_user_attrs(**{schema.ACCURACY_INTERVAL: [interval.low, interval.high]})
        recorder.set_user_attrs(
            **{
                schema.FOLD_ACCURACIES: accuracies,
                schema.FOLD_LOSSES: losses,
                schema.ACCURACY_STD: float(np.std(accuracies)),
                schema.LOSS_MEAN: float(np.mean(losses)),
                schema.LOSS_STD: float(np.std(losses)),
                schema.TRAIN_SECONDS: float(sum(r.seconds for r in results)),
                schema.WALL_SECONDS: time.perf_counter() - started,
            }
        )
        return float(np.mean(accuracies))

    def __call__(self, claim: ClaimedTrial, recorder: TrialRecorder) -> float:
        """Mean validation accuracy over the folds; folds the claim reuses are not retrained."""
        units = claim.units
        self._record_start(claim, recorder)
        started = time.perf_counter()
        definition = self.definition.at(claim.params)
        epochs = self.definition.epochs_at(claim.params, self.epochs)
        fold_trainer = FoldTrainer(definition, units, self.strategy)
        reuse = dict(claim.reused_folds)
        folds = self.folds
        curve = PointCurve(recorder, len(folds))
        for fold, reused in sorted(reuse.items()):
            curve.fold_known(fold, reused.history)
        splits = self.arrays.splits
        pending = {fold: split for fold, split in enumerate(splits) if fold not in reuse}
        if self.strategy.packs_folds and len(pending) > 1:
            reuse.update(
                fold_trainer.train_packed(
                    self.arrays,
                    pending,
                    epochs=epochs,
                    base_seed=self.base_seed,
                    listener=self.listener,
                    n_folds=len(folds),
                    on_fold_epoch=curve.folds_reached,
                )
            )
        results: list[FoldResult] = []
        for fold, split in enumerate(splits):
            if fold in reuse:
                result = reuse[fold]
            else:
                if self.listener:
                    self.listener.fold_started(fold + 1, len(folds), epochs)
                result = fold_trainer.train_fold(
                    self.arrays,
                    split,
                    fold=fold,
                    epochs=epochs,
                    seed=fold_seed(self.base_seed, units, fold),
                    listener=self.listener,
                    on_fold_epoch=curve.folds_reached,
                )
            results.append(result)
            # Each fold is recorded as it ends, so an interrupted attempt's folds are reused.
            self._record_fold(recorder, results)
        recorder.flush_curve()
        value = self._record_summary(recorder, results, started)
        release_compiled()
        return value
