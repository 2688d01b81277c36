"""Training strategies: how a worker trains what it claims, and the loops it runs.

A strategy says how a worker trains what it claims; the scheduler and the runner ask it
(does it train claimed points together? does it pack a point's folds?) instead of
comparing names, and :class:`~tuner.training.CrossValidation` runs it on the active
backend's loops (:class:`FoldLoop`, :class:`PackedLoop`). This module imports no
framework, so the CLI can offer the choices without loading one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tuner.errors import TunerError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy as np

    from tuner.study import StudyDefinition, TrainingProtocol


@dataclass(frozen=True)
class TrainingStrategy:
    """How a worker trains the grid points it claims.

    Attributes:
        name: What ``--trainer`` takes and each trial records.
        trains_together: Claims several grid points and trains them, all folds, as one
            grid model (grid packing); the others claim one point at a time.
        packs_folds: Trains a point's folds together as one packed model.
        compiled_loop: Uses the backend's compiled epoch loop (fused optimizer); False is
            plain ``model.fit``, the reference the benchmarks compare against.
    """

    name: str
    trains_together: bool
    packs_folds: bool
    compiled_loop: bool = True


STRATEGIES: dict[str, TrainingStrategy] = {
    strategy.name: strategy
    for strategy in (
        TrainingStrategy("grid", trains_together=True, packs_folds=True),
        TrainingStrategy("packed", trains_together=False, packs_folds=True),
        TrainingStrategy("fast", trains_together=False, packs_folds=False),
        TrainingStrategy("keras", trains_together=False, packs_folds=False, compiled_loop=False),
    )
}
"""Every strategy by name; the first is the default."""
STRATEGY_NAMES = tuple(STRATEGIES)
DEFAULT_STRATEGY = STRATEGY_NAMES[0]


def training_strategy(name: str) -> TrainingStrategy:
    """The strategy called ``name``.

    Raises:
        TunerError: No strategy has that name.
    """
    try:
        return STRATEGIES[name]
    except KeyError:
        raise TunerError(
            f"unknown --trainer '{name}'; choose one of {', '.join(STRATEGY_NAMES)}"
        ) from None


class FoldLoop(Protocol):
    """A backend's compiled loop for one model: trains one fold at a time.

    Made once per grid point from its first fold's model; :meth:`reset` loads the next
    fold's initial weights into the same compiled program.
    """

    def __init__(self, model: Any, protocol: TrainingProtocol) -> None: ...

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        epochs: int,
        validation: tuple[np.ndarray, np.ndarray],
        seed: int,
        on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    ) -> dict[str, list[float]]:
        """Train for ``epochs``; the per-epoch curves (loss, accuracy, val_*)."""
        ...

    def reset(self, weights: list[np.ndarray]) -> None:
        """Start again from ``weights`` (and a fresh optimizer state)."""
        ...

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Loss and accuracy on ``(x, y)``."""
        ...


class PackedLoop(Protocol):
    """A backend's compiled loop for a packed model: many (point, fold) models at once."""

    def __init__(
        self,
        model: Any,
        definition: StudyDefinition,
        packs: int,
        points: int = 1,
        learning_rate_scales: Sequence[Any] | None = None,
    ) -> None: ...

    def fit_folds(
        self,
        x: np.ndarray,
        y: np.ndarray,
        splits: Sequence[tuple[np.ndarray, np.ndarray]],
        *,
        epochs: int,
        seed: int,
        on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
        on_models_epoch: Callable[[int, list[float]], None] | None = None,
    ) -> list[dict[str, list[float]]]:
        """Train every packed model on its fold; one history per model, fold-major.

        ``on_epoch_end`` gets each epoch's logs averaged over the models;
        ``on_models_epoch`` every model's validation accuracy at that epoch.
        """
        ...
