"""Which Keras backend trains in this process: TensorFlow (the default) or JAX.

Keras reads ``KERAS_BACKEND`` once, when it is first imported, so the choice is made
before anything imports Keras and cannot change afterwards. Everything backend-specific
is the small epoch loop of each backend (:mod:`tuner.training._tf_loops`,
:mod:`tuner.training._jax_loops`); models are Keras layers and ``keras.ops``, shared.
With the JAX backend nothing imports TensorFlow, so tuner runs where it is not installed.
"""

from __future__ import annotations

import os
import sys
from typing import NamedTuple

from tuner.errors import TunerError
from tuner.study import BACKENDS, DEFAULT_BACKEND
from tuner.training._strategies import FoldLoop, PackedLoop


def active_backend() -> str:
    """The backend this process trains on: ``$KERAS_BACKEND``, else TensorFlow."""
    return os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND


def use_backend(name: str | None) -> str:
    """Choose this process's backend (None: ``$KERAS_BACKEND``, else TensorFlow).

    Raises:
        TunerError: The name is unknown, or Keras already runs on another backend.
    """
    chosen = name or active_backend()
    if chosen not in BACKENDS:
        raise TunerError(f"unknown backend '{chosen}'; choose one of {', '.join(BACKENDS)}")
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != chosen:
            raise TunerError(
                f"Keras already runs on {keras.backend.backend()} in this process; "
                f"set KERAS_BACKEND={chosen} before starting it"
            )
    os.environ["KERAS_BACKEND"] = chosen
    return chosen


class BackendLoops(NamedTuple):
    """A backend's compiled loops: for one model, and for a packed model of many."""

    single: type[FoldLoop]
    packed: type[PackedLoop]


def training_loops() -> BackendLoops:
    """The compiled loops of the active backend."""
    if active_backend() == "jax":
        from tuner.training._jax_loops import JaxFoldLoop, JaxPackedLoop

        return BackendLoops(JaxFoldLoop, JaxPackedLoop)
    from tuner.training._tf_loops import TFFoldLoop, TFPackedLoop

    return BackendLoops(TFFoldLoop, TFPackedLoop)


def release_compiled() -> None:
    """Forget what was built and compiled for the last grid point; call it between points.

    Every grid point has new shapes, so nothing compiled for one serves the next, yet
    both backends keep it: Keras its graph state, JAX its compiled programs (22 MB per
    point on the CPU, about 2.5 GB over the seed study, measured).
    """
    import keras

    keras.backend.clear_session()
    if active_backend() == "jax":
        from tuner.training._jax_loops import clear_compilations

        clear_compilations()
