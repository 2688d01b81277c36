"""The fast training loops on Keras' JAX backend: whole epochs as one jitted XLA program.

Invariant: for the same Keras model, initial weights, protocol, data and seed, these
trainers take exactly the steps the TensorFlow trainers (``TFFoldLoop`` and
``TFPackedLoop`` in :mod:`tuner.training._tf_loops`) take and report the same history,
so a study's numbers do not depend on the backend beyond float rounding (and Dropout's
masks, which each backend draws from its own generator). That holds because everything
that decides a step is the same:

* the batches: one ``numpy.random.default_rng(seed).permutation`` per epoch, cut into
  ``batch_size`` rows with a smaller last batch, exactly as the TensorFlow loop does. The
  full batches run as one compiled ``lax.fori_loop``; the last, partial batch is a second
  compiled program, one step with its own (static) shape, so it is neither padded nor
  masked and BatchNorm sees exactly its rows;
* the model: the Keras model itself, called through ``stateless_call``, which also
  carries BatchNorm's moving statistics and Dropout's seed-generator state;
* the loss: TensorFlow's ``sparse_categorical_crossentropy`` looks through a Softmax op
  to its logits inside a ``tf.function`` and computes ``log_softmax(logits)``. On JAX
  Keras cannot, and clips the probabilities to [1e-7, 1 - 1e-7], which changes the
  loss and zeroes the gradient of samples outside that range. So these loops trace the
  output layer with a linear activation (for that trace only) and compute the same
  ``log_softmax`` loss from its logits; accuracy is the argmax of the softmax, as there
  (a regression's float targets train the squared error of the one linear output, its
  score R² from that loss: :mod:`tuner.training._scores`);
* the optimizer: Adam is written out exactly as ``keras.optimizers.Adam.update_step``
  computes it (beta_1 0.9, beta_2 0.999, epsilon 1e-7, the bias correction folded into
  the step size), which is also what TensorFlow's fused ``ResourceApplyAdam`` computes.
  Other optimizers, and Adam with weight decay, run the Keras optimizer itself through
  ``stateless_apply``.

Every grid point has new shapes and so new programs (the epoch's loop, the last batch,
the evaluation); they are traced one after another and compiled in parallel threads,
since compiling, not training, is much of a grid point's time on a GPU.

The model's variables stay the source of truth between calls, as with TensorFlow: a fit
starts from their current values and writes the new values back after every epoch, so
``model.get_weights()``, saving and ``evaluate`` see the trained model. The optimizer's
state lives in the trainer and is cleared by :meth:`reset`.

This module imports JAX and never TensorFlow; the model must be built under
``KERAS_BACKEND=jax``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import keras
import numpy as np

from tuner.training._models import make_optimizer, uses_plain_adam
from tuner.training._scores import EpochScores, is_regression

if TYPE_CHECKING:
    from tuner.study import StudyDefinition, TrainingProtocol

# Rows per evaluation chunk, as in the TensorFlow trainer: bounds the activations' memory.
EVAL_BATCH = 8192
# Keras' Adam defaults, which the study's protocol uses.
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7
# Batches per iteration of the compiled epoch loop (``fori_loop``'s ``unroll``). Unrolling
# changes no number, only how much per-iteration loop overhead a device pays; read when
# a trainer first compiles, so bench/gpu.py can try other values.
UNROLL = 1
# Compile a fit's programs in parallel threads. XLA already spreads one compilation over a
# few cores; the threads overlap the serial parts. bench/gpu.py measures both ways.
PARALLEL_COMPILE = True

EpochCallback = Callable[[int, dict[str, float]], None]
ModelsCallback = Callable[[int, list[float]], None]
History = dict[str, list[float]]
Arrays = list[jax.Array]


class _State(NamedTuple):
    """Everything one training step reads and writes, as a pytree of arrays."""

    trainable: Arrays
    non_trainable: Arrays
    optimizer: Any


def _targets(y: np.ndarray) -> jax.Array:
    """Class ids as int32, a regression's values as float32."""
    return jnp.asarray(y, jnp.float32 if is_regression(y) else jnp.int32)


def _new_history() -> History:
    return {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}


class _KerasAdam:
    """Keras' Adam update (``keras.optimizers.Adam.update_step``), as a pure function."""

    def __init__(self, learning_rate: float, scales: Arrays | None = None) -> None:
        self.learning_rate = learning_rate
        self.scales = scales

    def initial_state(self, trainable: Arrays) -> tuple[jax.Array, Arrays, Arrays]:
        momentums = [jnp.zeros_like(value) for value in trainable]
        velocities = [jnp.zeros_like(value) for value in trainable]
        return jnp.zeros((), jnp.int32), momentums, velocities

    def apply(
        self, state: tuple[jax.Array, Arrays, Arrays], grads: Arrays, params: Arrays
    ) -> tuple[Arrays, tuple[jax.Array, Arrays, Arrays]]:
        iterations, momentums, velocities = state
        # Keras rounds its constants to float32 the same way: the learning rate is a
        # float32 variable, powers are taken in float32, 1 - beta is a Python float.
        lr = jnp.float32(self.learning_rate)
        local_step = (iterations + 1).astype(jnp.float32)
        beta_1_power = jnp.power(jnp.float32(BETA_1), local_step)
        beta_2_power = jnp.power(jnp.float32(BETA_2), local_step)
        alpha = lr * jnp.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        new_params, new_m, new_v = [], [], []
        scales: Sequence[jax.Array | None] = self.scales or [None] * len(params)
        for param, grad, m, v, scale in zip(
            params, grads, momentums, velocities, scales, strict=True
        ):
            m = m + (grad - m) * (1 - BETA_1)
            v = v + (jnp.square(grad) - v) * (1 - BETA_2)
            step = alpha if scale is None else alpha * scale  # a point's own learning rate
            new_params.append(param - (m * step) / (jnp.sqrt(v) + EPSILON))
            new_m.append(m)
            new_v.append(v)
        return new_params, (iterations + 1, new_m, new_v)


class _KerasOptimizer:
    """Any other Keras optimizer, run statelessly; its initial state is kept for resets."""

    def __init__(
        self,
        protocol: TrainingProtocol,
        variables: Sequence[keras.Variable],
        scales: Arrays | None = None,
    ) -> None:
        self.scales = scales
        # A fresh optimizer rather than ``model.optimizer``: the packed model is not
        # compiled, and a fresh one starts from iteration 0 whatever ran before.
        self.optimizer = make_optimizer(protocol)
        self.optimizer.build(list(variables))
        # Iterations 0, the learning rate and zeroed slots; a reset restores exactly this
        # (zeroing every optimizer variable would also zero the learning rate).
        self._initial = [jnp.asarray(variable.value) for variable in self.optimizer.variables]

    def initial_state(self, trainable: Arrays) -> Arrays:
        del trainable
        return list(self._initial)

    def apply(self, state: Arrays, grads: Arrays, params: Arrays) -> tuple[Arrays, Arrays]:
        new_params, new_state = self.optimizer.stateless_apply(state, grads, params)
        if self.scales is not None:
            # Every study optimizer's update is linear in its (constant) learning rate:
            # scaling the update gives each element its own point's learning rate.
            new_params = [
                old + scale * (new - old)
                for old, new, scale in zip(params, new_params, self.scales, strict=True)
            ]
        return new_params, new_state


class _JaxLoop:
    """What the plain and the packed trainer share: state, the jitted epoch and evaluation.

    The epoch and evaluation are written once for both: a plain model's per-sample loss
    has shape ``(batch,)``, a packed model's ``(batch, packs)``; reducing over axis 0
    gives a scalar or one value per fold, and the summed loss gives each fold's weight
    slice exactly its own gradient.
    """

    # Each fold's labels are repeated this many times for a grid model, whose outputs
    # hold that many points per fold (fold-major); 1 for the other models.
    points = 1

    def __init__(
        self,
        model: keras.Model,
        protocol: TrainingProtocol,
        learning_rate_scales: Sequence[np.ndarray] | None = None,
    ) -> None:
        if keras.backend.backend() != "jax":
            raise RuntimeError(
                f"the JAX trainers need KERAS_BACKEND=jax; Keras runs on "
                f"{keras.backend.backend()!r} in this process"
            )
        self.model = model
        self.protocol = protocol
        self._softmax_output = _softmax_output_layer(model)
        trainable = [variable.value for variable in model.trainable_variables]
        # Per variable, each element's learning rate over the protocol's (a grid whose
        # points have their own learning rates); None: one learning rate for all.
        scales = (
            None
            if learning_rate_scales is None
            else [jnp.asarray(scale, jnp.float32) for scale in learning_rate_scales]
        )
        if uses_plain_adam(protocol):
            self._optimizer: _KerasAdam | _KerasOptimizer = _KerasAdam(
                protocol.learning_rate, scales
            )
        else:
            self._optimizer = _KerasOptimizer(protocol, model.trainable_variables, scales)
        self._optimizer_state = self._optimizer.initial_state(trainable)
        # Compiled programs by name and argument shapes: one set per distinct data shape
        # (per grid point, and per fold length for the single-model trainer).
        self._programs: dict[tuple[Any, ...], Any] = {}

    def reset(self, weights: list[np.ndarray]) -> None:
        """Start a new fit from these weights with a fresh optimizer state.

        Args:
            weights: ``model.get_weights()`` of the model to start from (kernels, biases
                and BatchNorm statistics; Dropout's seed state is left running, as with
                TensorFlow).
        """
        self.model.set_weights(weights)
        trainable = [variable.value for variable in self.model.trainable_variables]
        self._optimizer_state = self._optimizer.initial_state(trainable)

    # -- state shuttled between the Keras variables and the compiled programs ---------

    def _read_state(self) -> _State:
        return _State(
            trainable=[variable.value for variable in self.model.trainable_variables],
            non_trainable=[variable.value for variable in self.model.non_trainable_variables],
            optimizer=self._optimizer_state,
        )

    def _write_state(self, state: _State) -> None:
        pairs = [
            *zip(self.model.trainable_variables, state.trainable, strict=True),
            *zip(self.model.non_trainable_variables, state.non_trainable, strict=True),
        ]
        for variable, value in pairs:
            variable.assign(value)
        self._optimizer_state = state.optimizer

    # -- traced code --------------------------------------------------------------------

    def _labels(self, y: jax.Array) -> jax.Array:
        return jnp.repeat(y, self.points, axis=1) if self.points > 1 else y

    def _sums_shape(self, fold_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(size * self.points for size in fold_shape)

    def _forward(
        self, trainable: Arrays, non_trainable: Arrays, x: jax.Array, y: jax.Array, training: bool
    ) -> tuple[jax.Array, jax.Array, Arrays]:
        """Per-sample losses, per-sample hits (1.0 or 0.0) and the updated layer state."""
        with _logits_traced(self._softmax_output):
            outputs, non_trainable = self.model.stateless_call(
                trainable, non_trainable, x, training=training
            )
        if jnp.issubdtype(y.dtype, jnp.floating):  # a regression's values
            return jnp.square(outputs[..., 0] - y), jnp.zeros_like(y), non_trainable
        if self._softmax_output is not None:
            losses = -jnp.take_along_axis(
                jax.nn.log_softmax(outputs, axis=-1), y[..., None], axis=-1
            )[..., 0]
            probabilities = jax.nn.softmax(outputs, axis=-1)
        else:  # not the study's model: Keras' own loss on its probabilities
            probabilities = outputs
            losses = keras.losses.sparse_categorical_crossentropy(y, probabilities)
        hits = (jnp.argmax(probabilities, axis=-1) == y).astype(jnp.float32)
        return losses, hits, non_trainable

    def _step(
        self,
        carry: tuple[_State, jax.Array, jax.Array],
        index: jax.Array,
        x: jax.Array,
        y: jax.Array,
    ) -> tuple[_State, jax.Array, jax.Array]:
        """One training step on the rows ``index``, adding to the loss and hit sums."""
        state, loss_sum, correct = carry
        x_batch, y_batch = x[index], self._labels(y[index])

        def objective(trainable: Arrays) -> tuple[jax.Array, tuple[Any, ...]]:
            losses, hits, non_trainable = self._forward(
                trainable, state.non_trainable, x_batch, y_batch, training=True
            )
            per_fold = jnp.mean(losses, axis=0)
            return jnp.sum(per_fold), (per_fold, hits, non_trainable)

        grads, (per_fold, hits, non_trainable) = jax.grad(objective, has_aux=True)(state.trainable)
        trainable, optimizer = self._optimizer.apply(state.optimizer, grads, state.trainable)
        size = jnp.float32(index.shape[0])
        return (
            _State(trainable, non_trainable, optimizer),
            loss_sum + per_fold * size,
            correct + jnp.sum(hits, axis=0),
        )

    def _full_batches(
        self, state: _State, x: jax.Array, y: jax.Array, order: jax.Array
    ) -> tuple[_State, jax.Array, jax.Array]:
        """Steps over ``order`` cut into full batches; loss and hit sums per fold."""
        batch = self.protocol.batch_size
        sums_shape = self._sums_shape(order.shape[1:])
        carry = (state, jnp.zeros(sums_shape, jnp.float32), jnp.zeros(sums_shape, jnp.float32))

        def body(i: jax.Array, carry: tuple[_State, jax.Array, jax.Array]) -> Any:
            index = jax.lax.dynamic_slice_in_dim(order, i * batch, batch, axis=0)
            return self._step(carry, index, x, y)

        done: tuple[_State, jax.Array, jax.Array] = jax.lax.fori_loop(
            0, order.shape[0] // batch, body, carry, unroll=UNROLL
        )
        return done

    def _evaluation(
        self,
        trainable: Arrays,
        non_trainable: Arrays,
        x: jax.Array,
        y: jax.Array,
        mask: jax.Array,
    ) -> tuple[jax.Array, jax.Array]:
        """Mean loss and accuracy over the rows where ``mask`` is 1, in EVAL_BATCH chunks."""
        y, mask = self._labels(y), self._labels(mask)

        def sums(x_chunk: jax.Array, y_chunk: jax.Array, m_chunk: jax.Array) -> jax.Array:
            losses, hits, _ = self._forward(trainable, non_trainable, x_chunk, y_chunk, False)
            return jnp.stack([jnp.sum(losses * m_chunk, axis=0), jnp.sum(hits * m_chunk, axis=0)])

        n = x.shape[0]
        chunks, tail = divmod(n, EVAL_BATCH)
        total = jnp.zeros((2, *y.shape[1:]), jnp.float32)
        if chunks:
            cut = chunks * EVAL_BATCH

            def body(total: jax.Array, chunk: tuple[jax.Array, ...]) -> tuple[jax.Array, None]:
                return total + sums(*chunk), None

            stacked = (
                x[:cut].reshape(chunks, EVAL_BATCH, *x.shape[1:]),
                y[:cut].reshape(chunks, EVAL_BATCH, *y.shape[1:]),
                mask[:cut].reshape(chunks, EVAL_BATCH, *mask.shape[1:]),
            )
            total, _ = jax.lax.scan(body, total, stacked)
        if tail:
            total = total + sums(x[n - tail :], y[n - tail :], mask[n - tail :])
        counts = jnp.sum(mask, axis=0)
        return total[0] / counts, total[1] / counts

    # -- compiled programs, and an epoch run with them ------------------------------

    def _compiled(self, requests: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]]) -> Any:
        """Compiled programs for these (function, example arguments), by request name.

        Programs are lowered one after another, since tracing runs Keras' Python code
        (and :func:`_logits_traced` changes a layer while it does), then compiled side by
        side: XLA compiles outside the GIL, and every grid point needs new programs.
        """
        keys = {name: _program_key(name, args) for name, (_, args) in requests.items()}
        missing = [name for name in requests if keys[name] not in self._programs]
        lowered = {}
        for name in missing:
            function, args = requests[name]
            lowered[name] = jax.jit(function).lower(*args)
        if PARALLEL_COMPILE and len(lowered) > 1:
            with concurrent.futures.ThreadPoolExecutor(len(lowered)) as pool:
                futures = {name: pool.submit(program.compile) for name, program in lowered.items()}
            compiled = {name: future.result() for name, future in futures.items()}
        else:
            compiled = {name: program.compile() for name, program in lowered.items()}
        for name, program in compiled.items():
            self._programs[keys[name]] = program
        return {name: self._programs[key] for name, key in keys.items()}

    def _epoch_programs(
        self,
        state: _State,
        x: jax.Array,
        y: jax.Array,
        n: int,
        fold_shape: tuple[int, ...],
        validation: tuple[jax.Array, jax.Array, jax.Array],
    ) -> tuple[Any, Any, Any]:
        """(full batches, last batch, evaluation) programs for epochs over ``n`` rows.

        The last, smaller batch is its own program, as the TensorFlow loop makes it its
        own step: neither padded nor masked, so BatchNorm sees exactly its rows.
        """
        full, tail = divmod(n, self.protocol.batch_size)
        zeros = jnp.zeros(self._sums_shape(fold_shape), jnp.float32)
        requests: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]] = {
            "evaluate": (self._evaluation, (state.trainable, state.non_trainable, *validation))
        }
        if full:
            order_shape = (full * self.protocol.batch_size, *fold_shape)
            order = jax.ShapeDtypeStruct(order_shape, jnp.int32)  # type: ignore[no-untyped-call]
            requests["full"] = (self._full_batches, (state, x, y, order))
        if tail:
            index = jax.ShapeDtypeStruct((tail, *fold_shape), jnp.int32)  # type: ignore[no-untyped-call]
            requests["tail"] = (self._step, ((state, zeros, zeros), index, x, y))
        programs = self._compiled(requests)
        return programs.get("full"), programs.get("tail"), programs["evaluate"]

    def _run_epoch(
        self, programs: tuple[Any, Any, Any], x: jax.Array, y: jax.Array, order: np.ndarray
    ) -> tuple[_State, jax.Array, jax.Array]:
        """One epoch from the model's current state; its new state, mean loss and accuracy."""
        full_batches, last_batch, _ = programs
        state = self._read_state()
        cut = len(order) - len(order) % self.protocol.batch_size
        if full_batches is not None:
            carry = full_batches(state, x, y, jnp.asarray(order[:cut]))
        else:
            zeros = jnp.zeros(self._sums_shape(order.shape[1:]), jnp.float32)
            carry = (state, zeros, zeros)
        if last_batch is not None:
            carry = last_batch(carry, jnp.asarray(order[cut:]), x, y)
        state, loss_sum, correct = carry
        self._write_state(state)
        return state, loss_sum / len(order), correct / len(order)


class JaxFoldLoop(_JaxLoop):
    """Trains one Keras model (JAX backend) repeatedly, one fold after another.

    The JAX twin of the TensorFlow ``TFFoldLoop``: same constructor, same ``reset``,
    ``fit`` and ``evaluate``, same batches and the same history.

    Args:
        model: The model from ``build_model``, built under ``KERAS_BACKEND=jax``.
        protocol: The study's training protocol (batch size, optimizer, learning rate).
    """

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        epochs: int,
        validation: tuple[np.ndarray, np.ndarray],
        seed: int,
        on_epoch_end: EpochCallback | None = None,
    ) -> History:
        """Train for ``epochs`` epochs from the model's current weights.

        Args:
            x: Training images, ``(n, 784)`` float32.
            y: Integer labels, ``(n,)``.
            epochs: Epochs to train.
            validation: Images and labels evaluated after every epoch.
            seed: Seeds the per-epoch shuffles (``numpy.random.default_rng``).
            on_epoch_end: Called with the epoch (from 1) and that epoch's logs.

        Returns:
            Keras-style history: ``loss``, ``accuracy``, ``val_loss`` and
            ``val_accuracy``, one float per epoch.
        """
        x_train, y_train = jnp.asarray(x, jnp.float32), _targets(y)
        y_val = _targets(validation[1])
        scores = EpochScores(y, validation[1])
        val = (jnp.asarray(validation[0], jnp.float32), y_val, jnp.ones(y_val.shape, jnp.float32))
        programs = self._epoch_programs(self._read_state(), x_train, y_train, len(y), (), val)
        rng = np.random.default_rng(seed)
        history = _new_history()
        for epoch in range(epochs):
            order = rng.permutation(len(y)).astype(np.int32)
            state, loss, accuracy = self._run_epoch(programs, x_train, y_train, order)
            val_loss, val_accuracy = programs[2](state.trainable, state.non_trainable, *val)
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
        """Mean loss and accuracy of the model's current weights (inference mode).

        Args:
            x: Images, ``(n, 784)`` float32.
            y: Integer labels, ``(n,)``.

        Returns:
            ``(loss, accuracy)``.
        """
        state = self._read_state()
        y_eval = _targets(y)
        args = (
            state.trainable,
            state.non_trainable,
            jnp.asarray(x, jnp.float32),
            y_eval,
            jnp.ones(y_eval.shape, jnp.float32),
        )
        loss, accuracy = self._compiled({"evaluate": (self._evaluation, args)})["evaluate"](*args)
        return float(loss), EpochScores(None, y).score(float(loss), float(accuracy))


class JaxPackedLoop(_JaxLoop):
    """Trains a packed model's k folds at once (JAX backend).

    The JAX twin of the TensorFlow ``TFPackedLoop``: the same per-fold batches (every
    fold cut to the shortest fold's length, one batch of each fold per step) and the
    same per-fold histories.

    Args:
        model: The model from ``build_packed_model`` (weights from ``pack_weights``),
            built under ``KERAS_BACKEND=jax``.
        definition: The study definition; its protocol sets batch size and optimizer.
        packs: Number of folds packed into the model.
        points: Grid points per fold in a grid model (``build_grid_model``); one history
            comes back per (fold, point), fold-major.
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
    ) -> list[History]:
        """Train on every split at once.

        Args:
            x: All images, ``(n, 784)`` float32; the splits index into it.
            y: All integer labels, ``(n,)``.
            splits: One ``(train_index, validation_index)`` pair per packed fold.
            epochs: Epochs to train.
            seed: Seeds the per-epoch shuffles (``numpy.random.default_rng``).
            on_epoch_end: Called with the epoch (from 1) and the folds' mean logs.
            on_models_epoch: Called with the epoch and every packed model's validation
                accuracy (fold-major, as the histories).

        Returns:
            One Keras-style history per split, in the order of ``splits``.
        """
        if len(splits) != self.packs:
            raise ValueError(f"the model packs {self.packs} folds, got {len(splits)} splits")
        rng = np.random.default_rng(seed)
        x_all, y_all = jnp.asarray(x, jnp.float32), _targets(y)
        # Per (fold, point) model, fold-major: its fold's R² denominators (a regression).
        per_fold = [EpochScores(y[train], y[val]) for train, val in splits]
        scores = [fold for fold in per_fold for _ in range(self.points)]
        shortest = min(len(train) for train, _ in splits)
        longest_val = max(len(val) for _, val in splits)
        # Shorter validation folds are padded by repeating rows, which the mask excludes.
        val_index = np.stack([np.resize(val, longest_val) for _, val in splits], axis=1)
        val_mask = np.stack(
            [np.arange(longest_val) < len(val) for _, val in splits], axis=1
        ).astype(np.float32)
        val_index_device = jnp.asarray(val_index.astype(np.int32))
        val = (x_all[val_index_device], y_all[val_index_device], jnp.asarray(val_mask))
        programs = self._epoch_programs(
            self._read_state(), x_all, y_all, shortest, (len(splits),), val
        )
        histories = [_new_history() for _ in range(len(splits) * self.points)]
        for epoch in range(epochs):
            order = np.stack([rng.permutation(train)[:shortest] for train, _ in splits], axis=1)
            state, loss, accuracy = self._run_epoch(programs, x_all, y_all, order.astype(np.int32))
            val_loss, val_accuracy = programs[2](state.trainable, state.non_trainable, *val)
            columns = {
                "loss": np.asarray(loss),
                "accuracy": np.asarray(accuracy),
                "val_loss": np.asarray(val_loss),
                "val_accuracy": np.asarray(val_accuracy),
            }
            for fold, history in enumerate(histories):
                logs = scores[fold].logs({key: float(v[fold]) for key, v in columns.items()})
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


def _program_key(name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """What a compiled program depends on: the function and its arguments' types."""
    leaves, structure = jax.tree.flatten(args)
    return (name, structure, tuple((leaf.shape, leaf.dtype) for leaf in leaves))


def clear_compilations() -> None:
    """Drop every compiled program and trace JAX keeps; call it between grid points.

    Each grid point's model has new shapes, so nothing compiled for one point serves the
    next, yet JAX's caches keep it all: a worker's memory grew by about 22 MB per grid
    point on the CPU (2.5 GB over the seed study's 113 points) and stays flat with this.
    """
    jax.clear_caches()  # type: ignore[no-untyped-call]


def _softmax_output_layer(model: keras.Model) -> keras.layers.Layer | None:
    """The output layer, if it ends in a softmax whose logits the loss should use."""
    layer = model.layers[-1] if model.layers else None
    if getattr(layer, "activation", None) is keras.activations.softmax:
        return layer
    return None


@contextlib.contextmanager
def _logits_traced(layer: keras.layers.Layer | None) -> Iterator[None]:
    """While tracing, make the softmax output layer return its logits."""
    if layer is None:
        yield
        return
    layer.activation = keras.activations.linear
    try:
        yield
    finally:
        layer.activation = keras.activations.softmax
