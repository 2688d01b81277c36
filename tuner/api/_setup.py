"""What API calls set up first: the Keras backend, Optuna's verbosity, the output console."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import optuna
from rich.console import Console


def output(console: Console | None) -> Console:
    """The caller's console, else one for standard output (a terminal, or Jupyter's cell)."""
    return console if console is not None else Console(highlight=False)


def select_backend(backend: str | None, *, load: bool) -> str:
    """Choose the Keras backend before anything imports Keras; import it now if ``load``.

    Raises:
        TunerError: The backend is unknown, or Keras already runs on another one.
    """
    # TensorFlow's C++ start-up chatter would bury the progress display.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tuner.training import import_backend_quietly, use_backend

    chosen = use_backend(backend)
    if load:
        import_backend_quietly()
    return chosen


def quiet_optuna(verbose: bool) -> None:
    """Optuna's per-study INFO lines only when asked for; never its experimental warnings.

    The experimental features (heartbeats, artifacts) are tuner's choice, not the
    caller's, so warning the caller about them is noise.
    """
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def names_list(names: str | Sequence[str] | None) -> list[str]:
    """A study name, several, or None (every study) as the list the commands take."""
    if names is None:
        return []
    return [names] if isinstance(names, str) else list(names)
