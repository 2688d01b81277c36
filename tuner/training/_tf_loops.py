"""TensorFlow training loops: whole epochs in one graph, one fold or k packed folds at once.

At batch size 120 these models are small enough that Keras' per-step machinery, not
arithmetic, sets the pace (bench/RESULTS.md): the plain ``model.fit`` reaches about a
fifth of this CPU's fp32 matmul peak. This trainer keeps the same model, loss, batch
size, shuffling and per-epoch metrics, but

* holds the fold's data in memory as tensors and runs each epoch as one
  ``tf.function`` loop (no per-step Python, no per-epoch iterator rebuilds);
* applies Adam with TensorFlow's fused kernel (``ResourceApplyAdam``), which computes
  exactly Keras' update in one pass instead of a dozen small ops per variable;
* traces once per grid point: folds reuse the graph, getting fresh weights and fresh
  optimizer state through variable assignments.

Other optimizers, and Adam with weight decay, use the Keras optimizer inside the same loop.

:class:`TFPackedLoop` runs the same loop over a packed model
(:func:`tuner.training._models.build_packed_model`): the loss is the sum of the folds'
mean losses, so each weight slice gets exactly its own fold's gradient, and Adam, being
element-wise, updates each slice as alone. What differs from separate fits: each step
draws one batch from every fold, so folds are cut to the shortest fold's size (at most
one sample per epoch left out, a different one each epoch).
``tests/training/test_packed.py`` checks fold accuracies agree with separate fits.

The loss follows the targets: class ids (integers) train sparse categorical
cross-entropy and count hits; values (floats, a regression) train the squared error of
the one output, and the score is R² from it (:mod:`tuner.training._scores`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from tuner.study import StudyDefinition, TrainingProtocol
from tuner.training._models import make_optimizer, uses_plain_adam
from tuner.training._scores import EpochScores, is_regression

EVAL_BATCH = 8192
EpochCallback = Callable[[int, dict[str, float]], None]
ModelsCallback = Callable[[int, list[float]], None]


def _scaled_adam_update(
    variable: tf.Variable, m: tf.Variable, v: tf.Variable, gradient: tf.Tensor, step: tf.Tensor
) -> None:
    """ResourceApplyAdam's arithmetic with a per-element step size, fused by XLA into one
    pass over the variable and its moments (unfused, its six ops cost 4x the fused kernel)."""
    beta_1, beta_2, epsilon = 0.9, 0.999, 1e-7  # Keras' Adam defaults
    m.assign_add((gradient - m) * (1.0 - beta_1))
    v.assign_add((tf.square(gradient) - v) * (1.0 - beta_2))
    variable.assign_sub(m * step / (tf.sqrt(v) + epsilon))


_scaled_adam = tf.function(_scaled_adam_update, jit_compile=True)


def _targets(y: np.ndarray) -> tf.Tensor:
    """Class ids as int32, a regression's values as float32."""
    return tf.constant(y, dtype=tf.float32 if is_regression(y) else tf.int32)


def _per_sample(y: tf.Tensor, outputs: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-sample losses and hits (1.0 or 0.0; zeros for a regression) of a batch."""
    if y.dtype.is_floating:
        return tf.square(outputs[..., 0] - y), tf.zeros_like(y)
    losses = keras.losses.sparse_categorical_crossentropy(y, outputs)
    predicted = tf.argmax(outputs, axis=-1, output_type=tf.int32)
    return losses, tf.cast(tf.equal(predicted, y), tf.float32)


class TFFoldLoop:
    """Trains one compiled Keras model, repeatedly (one fold after another)."""

    def __init__(
        self,
        model: keras.Model,
        protocol: TrainingProtocol,
        learning_rate_scales: Sequence[np.ndarray] | None = None,
    ) -> None:
        self.model = model
        self.protocol = protocol
        self.variables = list(model.trainable_variables)
        # Per variable, each element's learning rate over the protocol's (a grid whose
        # points have their own learning rates); None: one learning rate for all.
        self.scales = (
            None
            if learning_rate_scales is None
            else [tf.constant(scale, tf.float32) for scale in learning_rate_scales]
        )
        self.fused_adam = uses_plain_adam(protocol)
        if self.fused_adam:
            self.slots = [
                (tf.Variable(tf.zeros_like(v.value)), tf.Variable(tf.zeros_like(v.value)))
                for v in self.variables
            ]
            self.step = tf.Variable(0.0, dtype=tf.float32)
        else:
            # Its own optimizer: a packed model is never compiled, so has none.
            self.optimizer = make_optimizer(protocol)
            self.optimizer.build(self.variables)
        self._train_epoch = tf.function(self._epoch_graph)
        self._evaluate = tf.function(self._evaluate_graph)

    def reset(self, weights: list[np.ndarray]) -> None:
        """Start a new fit from these weights with a fresh optimizer state."""
        self.model.set_weights(weights)
        if self.fused_adam:
            self.step.assign(0.0)
            for m, v in self.slots:
                m.assign(tf.zeros_like(m))
                v.assign(tf.zeros_like(v))
        else:
            for variable in self.optimizer.variables:
                # Slots and the step count start again; the learning rate is a variable
                # too, and zeroing it would silently stop training after the first fold.
                if "learning_rate" not in variable.path:
                    variable.assign(tf.zeros_like(variable))

    def _apply(self, gradients: list[tf.Tensor]) -> None:
        if not self.fused_adam:
            if self.scales is None:
                self.optimizer.apply(gradients, self.variables)
                return
            # Every study optimizer's update is linear in its (constant) learning rate:
            # scaling the update gives each element its own point's learning rate.
            before = [tf.identity(variable.value) for variable in self.variables]
            self.optimizer.apply(gradients, self.variables)
            for variable, old, scale in zip(self.variables, before, self.scales, strict=True):
                variable.assign(old + scale * (variable.value - old))
            return
        beta_1, beta_2, epsilon = 0.9, 0.999, 1e-7  # Keras' Adam defaults
        step = self.step.assign_add(1.0)
        # Once per step, shared by every variable's fused update.
        constants = {
            "beta1_power": tf.pow(beta_1, step),
            "beta2_power": tf.pow(beta_2, step),
            "lr": tf.constant(self.protocol.learning_rate, tf.float32),
            "beta1": tf.constant(beta_1),
            "beta2": tf.constant(beta_2),
            "epsilon": tf.constant(epsilon),
        }
        if self.scales is not None:
            # ResourceApplyAdam's own arithmetic, with a per-element learning rate.
            alpha = (
                constants["lr"]
                * tf.sqrt(1.0 - constants["beta2_power"])
                / (1.0 - constants["beta1_power"])
            )
            for variable, (m, v), gradient, scale in zip(
                self.variables, self.slots, gradients, self.scales, strict=True
            ):
                _scaled_adam(variable.value, m, v, gradient, alpha * scale)
            return
        for variable, (m, v), gradient in zip(self.variables, self.slots, gradients, strict=True):
            tf.raw_ops.ResourceApplyAdam(
                var=variable.value.handle, m=m.handle, v=v.handle, grad=gradient, **constants
            )

    def _epoch_graph(self, x: tf.Tensor, y: tf.Tensor, order: tf.Tensor) -> tuple[tf.Tensor, ...]:
        n = tf.shape(x)[0]
        batch = self.protocol.batch_size
        loss_sum = tf.constant(0.0)
        correct = tf.constant(0.0)
        for i in tf.range((n + batch - 1) // batch):
            index = order[i * batch : tf.minimum((i + 1) * batch, n)]
            x_batch, y_batch = tf.gather(x, index), tf.gather(y, index)
            with tf.GradientTape() as tape:
                probabilities = self.model(x_batch, training=True)
                losses, hits = _per_sample(y_batch, probabilities)
                loss = tf.reduce_mean(losses)
            self._apply(tape.gradient(loss, self.variables))
            size = tf.cast(tf.shape(index)[0], tf.float32)
            loss_sum += loss * size
            correct += tf.reduce_sum(hits)
        total = tf.cast(n, tf.float32)
        return loss_sum / total, correct / total

    def _evaluate_graph(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, ...]:
        n = tf.shape(x)[0]
        loss_sum = tf.constant(0.0)
        correct = tf.constant(0.0)
        for i in tf.range((n + EVAL_BATCH - 1) // EVAL_BATCH):
            x_batch = x[i * EVAL_BATCH : tf.minimum((i + 1) * EVAL_BATCH, n)]
            y_batch = y[i * EVAL_BATCH : tf.minimum((i + 1) * EVAL_BATCH, n)]
            probabilities = self.model(x_batch, training=False)
            losses, hits = _per_sample(y_batch, probabilities)
            loss_sum += tf.reduce_sum(losses)
            correct += tf.reduce_sum(hits)
        total = tf.cast(n, tf.float32)
        return loss_sum / total, correct / total

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        epochs: int,
        validation: tuple[np.ndarray, np.ndarray],
        seed: int,
        on_epoch_end: EpochCallback | None = None,
    ) -> dict[str, list[float]]:
        """Keras-style history: loss, accuracy, val_loss, val_accuracy per epoch (the
        accuracy keys hold R² for a regression)."""
        x_train, y_train = tf.constant(x), _targets(y)
        x_val, y_val = tf.constant(validation[0]), _targets(validation[1])
        scores = EpochScores(y, validation[1])
        rng = np.random.default_rng(seed)
        history: dict[str, list[float]] = {
            "loss": [],
            "accuracy": [],
            "val_loss": [],
            "val_accuracy": [],
        }
        for epoch in range(epochs):
            order = tf.constant(rng.permutation(len(y)).astype(np.int32))
            loss, accuracy = self._train_epoch(x_train, y_train, order)
            val_loss, val_accuracy = self._evaluate(x_val, y_val)
            logs = scores.logs(
                {
                    "loss": float(loss),
                    "accuracy": float(accuracy),
                    "val_loss": float(val_loss),
                    "val_accuracy": float(val_accuracy),
                }
            )
            for key, value in logs.items():
                history[key].append(value)
            if on_epoch_end:
                on_epoch_end(epoch + 1, logs)
        return history

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Loss and score (accuracy, or R²) on ``(x, y)``."""
        loss, accuracy = self._evaluate(tf.constant(x), _targets(y))
        return float(loss), EpochScores(None, y).score(float(loss), float(accuracy))


class TFPackedLoop(TFFoldLoop):
    """The fast trainer's loop and fused Adam, over k folds at once.

    With ``points > 1`` the model is a grid model (``build_grid_model``): each fold's
    batch feeds ``points`` models, whose outputs come fold-major, so each fold's labels
    are repeated ``points`` times and one history comes back per (fold, point).
    """

    def __init__(
        self,
        model: keras.Model,
        definition: StudyDefinition,
        packs: int,
        points: int = 1,
        learning_rate_scales: Sequence[np.ndarray] | None = None,
    ) -> None:
        self.packs, self.points = packs, points
        super().__init__(model, definition.protocol, learning_rate_scales)
        # Validation rows differ per fold: each packed model counts only its own.
        self._evaluate = tf.function(self._evaluate_masked_graph)

    def _labels(self, y: tf.Tensor) -> tf.Tensor:
        return tf.repeat(y, self.points, axis=1) if self.points > 1 else y

    def _epoch_graph(self, x: tf.Tensor, y: tf.Tensor, order: tf.Tensor) -> tuple[tf.Tensor, ...]:
        # order: (m, k) row indices into x, one column per fold.
        m = tf.shape(order)[0]
        batch = self.protocol.batch_size
        loss_sum = tf.zeros((self.packs * self.points,))
        correct = tf.zeros((self.packs * self.points,))
        for i in tf.range((m + batch - 1) // batch):
            index = order[i * batch : tf.minimum((i + 1) * batch, m)]
            x_batch, y_batch = tf.gather(x, index), self._labels(tf.gather(y, index))
            with tf.GradientTape() as tape:
                probabilities = self.model(x_batch, training=True)
                losses, hits = _per_sample(y_batch, probabilities)
                per_fold = tf.reduce_mean(losses, axis=0)
                loss = tf.reduce_sum(per_fold)
            self._apply(tape.gradient(loss, self.variables))
            size = tf.cast(tf.shape(index)[0], tf.float32)
            loss_sum += per_fold * size
            correct += tf.reduce_sum(hits, axis=0)
        total = tf.cast(m, tf.float32)
        return loss_sum / total, correct / total

    def _evaluate_masked_graph(
        self, x: tf.Tensor, y: tf.Tensor, mask: tf.Tensor
    ) -> tuple[tf.Tensor, ...]:
        # In chunks: a grid model's activations for a whole validation split would be
        # (rows x folds x every point's units) at once.
        y, mask = self._labels(y), self._labels(mask)
        n = tf.shape(x)[0]
        loss_sum = tf.zeros((self.packs * self.points,))
        hit_sum = tf.zeros((self.packs * self.points,))
        for i in tf.range((n + EVAL_BATCH - 1) // EVAL_BATCH):
            rows = slice(i * EVAL_BATCH, tf.minimum((i + 1) * EVAL_BATCH, n))
            probabilities = self.model(x[rows], training=False)
            losses, hits = _per_sample(y[rows], probabilities)
            loss_sum += tf.reduce_sum(losses * mask[rows], axis=0)
            hit_sum += tf.reduce_sum(hits * mask[rows], axis=0)
        counts = tf.reduce_sum(mask, axis=0)
        return loss_sum / counts, hit_sum / counts

    def fit_folds(
        self,
        x: np.ndarray,
        y: np.ndarray,
        splits: Sequence[tuple[np.ndarray, np.ndarray]],
        *,
        epochs: int,
        seed: int,
        on_epoch_end: EpochCallback | None = None,
        on_models_epoch: ModelsCallback | None = None,
    ) -> list[dict[str, list[float]]]:
        """Train on every split at once; one Keras-style history per split.

        For a grid model, one history per (fold, point), fold-major.
        """
        rng = np.random.default_rng(seed)
        x_all, y_all = tf.constant(x), _targets(y)
        # Per (fold, point) model, fold-major: its fold's R² denominators (a regression).
        per_fold = [EpochScores(y[train], y[val]) for train, val in splits]
        scores = [fold for fold in per_fold for _ in range(self.points)]
        shortest = min(len(train) for train, _ in splits)
        longest_val = max(len(val) for _, val in splits)
        val_index = np.stack([np.resize(val, longest_val) for _, val in splits], axis=1)
        val_mask = np.stack(
            [np.arange(longest_val) < len(val) for _, val in splits], axis=1
        ).astype(np.float32)
        x_val = tf.gather(x_all, val_index)
        y_val = tf.gather(y_all, val_index)
        histories: list[dict[str, list[float]]] = [
            {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
            for _ in range(len(splits) * self.points)
        ]
        for epoch in range(epochs):
            order = np.stack([rng.permutation(train)[:shortest] for train, _ in splits], axis=1)
            loss, accuracy = self._train_epoch(x_all, y_all, tf.constant(order.astype(np.int32)))
            val_loss, val_accuracy = self._evaluate(x_val, y_val, tf.constant(val_mask))
            for fold, history in enumerate(histories):
                logs = scores[fold].logs(
                    {
                        "loss": float(loss[fold]),
                        "accuracy": float(accuracy[fold]),
                        "val_loss": float(val_loss[fold]),
                        "val_accuracy": float(val_accuracy[fold]),
                    }
                )
                for key, value in logs.items():
                    history[key].append(value)
            if on_epoch_end:
                mean = {
                    key: float(np.mean([h[key][-1] for h in histories])) for key in histories[0]
                }
                on_epoch_end(epoch + 1, mean)
            if on_models_epoch:
                on_models_epoch(epoch + 1, [h["val_accuracy"][-1] for h in histories])
        return histories
