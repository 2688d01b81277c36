"""The GPU memory budget of grid packing: its parameter count is the grid model's own,
and the batch it allows fits the budget while one point more would not."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tuner.study import BUILTIN_STUDIES_DIR, load_definitions
from tuner.training import device_point_limit
from tuner.training._memory import (
    free_device_bytes,
    grid_batch_bytes,
    grid_parameter_count,
    points_within,
)
from tuner.training._models import build_grid_model

DEFINITIONS = load_definitions(BUILTIN_STUDIES_DIR)
TRAIN_ROWS = 60_000


def values(variables: list[keras.Variable]) -> int:
    # Dropout's seed generator keeps a 2-value state that is no model weight.
    return sum(int(np.prod(v.shape)) for v in variables if "seed_generator" not in v.path)


@pytest.mark.parametrize("variant", ["2layer", "3layer-no-bn", "5layer"])
def test_parameter_count_is_the_grid_models_own(variant: str) -> None:
    definition = DEFINITIONS[variant]
    widths = list(definition.grid.values())
    # Uneven points, so padding is what is counted: two layer-1 widths (two chains), and a
    # third point sharing the first's layer-1 width with other later widths (one chain
    # padded to its widest, with a unit mask).
    points = [
        tuple(w[0] for w in widths),
        tuple(w[-1] for w in widths),
        (widths[0][0], *(w[-1] for w in widths[1:])),
    ]
    model = build_grid_model(definition, points, 3)
    assert grid_parameter_count(definition, points, 3) == (
        values(model.trainable_weights),
        values(model.non_trainable_weights),
    )


def test_the_allowed_batch_fits_and_one_point_more_would_not() -> None:
    definition = DEFINITIONS["3layer"]
    widest = tuple(max(v) for v in definition.grid.values())

    def cost(count: int) -> int:
        return grid_batch_bytes(definition, [widest] * count, 3, TRAIN_ROWS)

    assert cost(2) > cost(1) > 0
    budget = cost(5) + 1
    assert points_within(definition, 3, TRAIN_ROWS, budget) == 5
    # Never below one point (it runs or fails alone), never above the grid.
    assert points_within(definition, 3, TRAIN_ROWS, 0) == 1
    assert points_within(definition, 3, TRAIN_ROWS, 10**15) == definition.grid_size
    # Any points of the grid cost at most what the widest do.
    narrow = [tuple(min(v) for v in definition.grid.values())] * 5
    assert grid_batch_bytes(definition, narrow, 3, TRAIN_ROWS) < cost(5)


def test_no_cap_on_a_cpu() -> None:
    assert free_device_bytes("CPU:0") is None
    assert device_point_limit(DEFINITIONS["2layer"], 3, TRAIN_ROWS, "CPU:0") is None
