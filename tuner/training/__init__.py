"""Training: the only package that imports a deep-learning framework.

It names the training strategies and backends a worker may be asked for (without
importing a framework), builds each grid point's Keras model, trains its folds
(:class:`CrossValidation` is the ``evaluate`` callable the scheduler's runner calls) and
the final fit. Names are
imported on first use, so ``import tuner.training`` costs nothing until something
trains, and processes that never train (``tuner status``) never load TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuner.training._backend import active_backend, training_loops, use_backend
    from tuner.training._compile_cache import prepare_compile_cache
    from tuner.training._cross_validation import (
        CrossValidation,
        FoldTrainer,
        NonFiniteLossError,
        TrainingListener,
        fold_seed,
    )
    from tuner.training._final_fit import final_seed, run_final_fit, weight_quantiles
    from tuner.training._memory import device_point_limit
    from tuner.training._models import (
        PackedDense,
        build_model,
        build_packed_model,
        dense_weights,
        expected_parameter_count,
        initial_weights,
        pack_weights,
    )
    from tuner.training._runtime import configure_device, import_backend_quietly
    from tuner.training._strategies import (
        DEFAULT_STRATEGY,
        STRATEGIES,
        STRATEGY_NAMES,
        FoldLoop,
        PackedLoop,
        TrainingStrategy,
        training_strategy,
    )
    from tuner.training._tf_loops import TFFoldLoop, TFPackedLoop

_LOCATIONS = {
    "active_backend": "_backend",
    "training_loops": "_backend",
    "use_backend": "_backend",
    "prepare_compile_cache": "_compile_cache",
    "CrossValidation": "_cross_validation",
    "FoldTrainer": "_cross_validation",
    "NonFiniteLossError": "_cross_validation",
    "TrainingListener": "_cross_validation",
    "fold_seed": "_cross_validation",
    "final_seed": "_final_fit",
    "run_final_fit": "_final_fit",
    "weight_quantiles": "_final_fit",
    "device_point_limit": "_memory",
    "PackedDense": "_models",
    "build_model": "_models",
    "build_packed_model": "_models",
    "dense_weights": "_models",
    "initial_weights": "_models",
    "expected_parameter_count": "_models",
    "pack_weights": "_models",
    "configure_device": "_runtime",
    "import_backend_quietly": "_runtime",
    "DEFAULT_STRATEGY": "_strategies",
    "STRATEGIES": "_strategies",
    "STRATEGY_NAMES": "_strategies",
    "FoldLoop": "_strategies",
    "PackedLoop": "_strategies",
    "TrainingStrategy": "_strategies",
    "training_strategy": "_strategies",
    "TFFoldLoop": "_tf_loops",
    "TFPackedLoop": "_tf_loops",
}

__all__ = [
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "STRATEGY_NAMES",
    "CrossValidation",
    "FoldLoop",
    "FoldTrainer",
    "NonFiniteLossError",
    "PackedDense",
    "PackedLoop",
    "TFFoldLoop",
    "TFPackedLoop",
    "TrainingListener",
    "TrainingStrategy",
    "active_backend",
    "build_model",
    "build_packed_model",
    "configure_device",
    "dense_weights",
    "device_point_limit",
    "expected_parameter_count",
    "final_seed",
    "fold_seed",
    "import_backend_quietly",
    "initial_weights",
    "pack_weights",
    "prepare_compile_cache",
    "run_final_fit",
    "training_loops",
    "training_strategy",
    "use_backend",
    "weight_quantiles",
]


def __getattr__(name: str) -> Any:
    if name not in _LOCATIONS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LOCATIONS[name]}"), name)
