"""How many grid points a worker may train together on its GPU: a memory budget.

Grid packing (``--trainer grid``) puts a batch of grid points, each with all its folds,
into one model, so its device memory grows with the batch. A card that runs out fails
every point of the batch at once, so on a GPU the claim size is capped before claiming:
the batch must fit in the memory the device has free for this process. The estimate is
deliberately pessimistic (every point costed as the grid's widest, every buffer a step
can hold at once counted), since a batch one point smaller costs little and an
out-of-memory error costs the whole batch.

The budget is what the device's allocator grants this process: with JAX, its memory
statistics (``XLA_PYTHON_CLIENT_MEM_FRACTION`` sets the share when several workers share
a card); with TensorFlow, the free memory ``nvidia-smi`` reports. On a CPU there is no
cap beyond ``--pack``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from tuner.study import StudyDefinition
from tuner.training._backend import active_backend

FLOAT_BYTES = 4
# Rows of one evaluation chunk (as both backends' trainers use).
EVAL_ROWS = 8192
# Of the free memory, what a batch may plan on: the rest is left for the allocator's
# fragmentation and for what the estimate cannot see (compiler scratch space).
USABLE_SHARE = 0.8


def grid_parameter_count(
    definition: StudyDefinition, points: Sequence[Sequence[int]], folds: int
) -> tuple[int, int]:
    """(trainable, non-trainable) values of the grid model of ``points`` x ``folds``.

    As :func:`tuner.training._models.build_grid_model` lays it out: layer 1 concatenates
    every point's units per fold; later layers run one chain per layer-1 width, each
    (fold, point) model padded to its group's widest, with a mask over the padded units.
    """
    first = sum(units[0] for units in points)
    inputs, outputs = definition.task.inputs, definition.task.outputs
    trainable = folds * (inputs * first + first)
    non_trainable = 0
    # Costed for the grid's costliest point: BatchNorm if any point has it.
    batch_norm = True in definition.values_of("batch_norm")
    if batch_norm:
        trainable += 2 * folds * first
        non_trainable += 2 * folds * first
    output = 0
    for width in sorted({units[0] for units in points}):
        # One chain of later layers per layer-1 width, padded to that group's widest.
        group = [units for units in points if units[0] == width]
        models = folds * len(group)
        fan_in = width
        for layer in range(1, definition.n_layers):
            widest = max(units[layer] for units in group)
            trainable += models * (fan_in * widest + widest)
            if min(units[layer] for units in group) < widest:
                non_trainable += models * widest  # the unit mask of padded units
            if batch_norm:
                trainable += 2 * models * widest
                non_trainable += 2 * models * widest  # moving mean and variance
            fan_in = widest
        output += models * (fan_in * outputs + outputs)
    return trainable + output, non_trainable


def grid_batch_bytes(
    definition: StudyDefinition, points: Sequence[Sequence[int]], folds: int, train_rows: int
) -> int:
    """Device memory a grid batch needs at its peak, pessimistically.

    Counted: the weights, their gradients, Adam's two moments and the step's new copies
    (5 per trainable value), the masks and moving statistics twice; a training step's
    activations (4 per unit and row: pre-activation, normalised, Dropout mask, output,
    and as much again for their gradients) and an evaluation chunk's; the training
    images and labels, once as given and once gathered per fold.
    """
    trainable, non_trainable = grid_parameter_count(definition, points, folds)
    models = folds * len(points)
    units = folds * sum(units[0] for units in points)
    for layer in range(1, definition.n_layers):
        units += models * max(p[layer] for p in points)
    units += models * definition.task.outputs
    batch: int = max(definition.values_of("batch_size"))
    activations = 8 * units * batch + 4 * units * EVAL_ROWS
    # Data scaled per fold is held once per fold (tuner.data.fold_arrays).
    copies = folds if definition.task.scales_data else 1
    data = 2 * copies * train_rows * (definition.task.inputs + 1)
    return FLOAT_BYTES * (5 * trainable + 2 * non_trainable + activations + data)


def points_within(
    definition: StudyDefinition, folds: int, train_rows: int, budget_bytes: int
) -> int:
    """The most grid points of ``definition`` whose batch fits ``budget_bytes`` (at least 1).

    Every point is costed as the grid's widest (each layer's largest width), so any
    batch of that many points fits, whichever points a claim hands out.
    """
    widest = tuple(max(values) for values in definition.grid.values())
    fits = 1
    for count in range(2, definition.grid_size + 1):
        if grid_batch_bytes(definition, [widest] * count, folds, train_rows) > budget_bytes:
            break
        fits = count
    return fits


def free_device_bytes(device: str, gpu: int | None = None) -> int | None:
    """Bytes this process may still allocate on its GPU, or None where that is unknown.

    Args:
        device: The device :func:`tuner.training.configure_device` chose (``CPU:0``
            gives None).
        gpu: The ``--gpu`` index it was given (None: the first visible GPU).
    """
    if not device.startswith("GPU"):
        return None
    if active_backend() == "jax":
        import jax

        chosen = getattr(jax.config, "jax_default_device", None) or jax.devices()[0]
        stats = chosen.memory_stats()
        if stats and "bytes_limit" in stats:
            return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
        return None
    return _nvidia_smi_free_bytes(gpu or 0)


def _nvidia_smi_free_bytes(index: int) -> int | None:
    # TensorFlow reports what it has allocated, never what the card has left. nvidia-smi
    # numbers every card, so a visible index maps through CUDA_VISIBLE_DEVICES (whose
    # entries may be indices or UUIDs; --id takes both).
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    visible = [v for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    card = visible[index].strip() if index < len(visible) else str(index)
    try:
        result = subprocess.run(
            [smi, "--query-gpu=memory.free", "--format=csv,noheader,nounits", f"--id={card}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return int(result.stdout.split()[0]) * 2**20
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def device_point_limit(
    definition: StudyDefinition,
    folds: int,
    train_rows: int,
    device: str,
    gpu: int | None = None,
) -> int | None:
    """The most grid points one batch may hold on this process's GPU; None on a CPU.

    Args:
        definition: The study's definition (its grid's widest point is costed).
        folds: Folds per grid point.
        train_rows: Training images the study trains on.
        device: The device training runs on (see :func:`free_device_bytes`).
        gpu: The ``--gpu`` index, if one was given.
    """
    free = free_device_bytes(device, gpu)
    if free is None:
        return None
    return points_within(definition, folds, train_rows, int(free * USABLE_SHARE))
