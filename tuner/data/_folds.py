"""Deterministic k-fold splits: stratified for classes, shuffled k-fold for regression.

Every trial of a study must see the very same folds, otherwise grid points would be
compared on different data; the split is therefore a pure function of the targets, the
task and a seed recorded on the study.
"""

from __future__ import annotations

import zlib

import numpy as np

from tuner.data._features import FEW_CLASSES
from tuner.data._shown import plain
from tuner.data._task import Task
from tuner.errors import TunerError

QUANTITY_HINT = "; if the target is a quantity, pass --task regression"


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train indices, validation indices) per fold; each class spread evenly over folds."""
    if k < 2:
        raise ValueError("k-fold cross-validation needs k >= 2")
    if len(labels) < k:
        raise ValueError(f"{len(labels)} samples cannot be split into {k} folds")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        # Continuing the round-robin across classes keeps fold sizes within one sample.
        fold_of[members] = (np.arange(len(members)) + offset) % k
        offset += len(members)
    everything = np.arange(len(labels))
    return [(everything[fold_of != f], everything[fold_of == f]) for f in range(k)]


def shuffled_folds(n: int, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Plain k-fold of ``n`` rows in a seeded random order (regression: no classes to
    stratify by); fold sizes within one row of each other."""
    if k < 2:
        raise ValueError("k-fold cross-validation needs k >= 2")
    if n < k:
        raise ValueError(f"{n} samples cannot be split into {k} folds")
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[np.random.default_rng(seed).permutation(n)] = np.arange(n) % k
    everything = np.arange(n)
    return [(everything[fold_of != f], everything[fold_of == f]) for f in range(k)]


def task_folds(
    targets: np.ndarray, k: int, seed: int, task: Task
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The task's k-fold split: :func:`stratified_folds` of class ids, or
    :func:`shuffled_folds` for a regression."""
    if task.regression:
        return shuffled_folds(len(targets), k, seed)
    return stratified_folds(targets, k, seed)


def repeat_seed(fold_seed: int, repeat: int) -> int:
    """The split seed of repetition ``repeat`` of repeated k-fold CV.

    Repetition 0 uses the study's fold seed itself, so one repetition is exactly the
    unrepeated protocol; the others derive from it, reproducibly and independently of
    how many repetitions there are.
    """
    if repeat == 0:
        return fold_seed
    return zlib.crc32(f"{fold_seed}:repeat:{repeat}".encode())


def repeated_folds(
    labels: np.ndarray, k: int, seeds: list[int] | tuple[int, ...], task: Task | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The folds of repeated k-fold CV: one k-fold split of the task per seed, in order.

    Fold ``r * k + j`` of the result is fold ``j`` of the split seeded by ``seeds[r]``;
    with one seed it is :func:`task_folds` itself (:func:`stratified_folds` for classes).
    """
    task = task or Task()
    return [split for seed in seeds for split in task_folds(labels, k, seed, task)]


def check_foldable(labels: np.ndarray, k: int, source: str, task: Task | None = None) -> None:
    """Refuse data too small for k-fold CV: every class must reach every fold.

    With fewer than ``k`` rows of a class, some fold validates without it, and with
    fewer than ``classes * k`` rows some class is missing altogether: training would run
    and report accuracies that mean nothing (0.0 on a 5-image subset). A regression needs
    at least two rows per fold, so that each validation fold's R² is defined.
    """
    task = task or Task()
    if task.regression:
        needed = 2 * k
        if len(labels) < needed:
            raise TunerError(
                f"{source}: {len(labels)} training rows cannot make {k} folds of at least "
                f"2 rows each; use at least {needed}"
            )
        return
    n_classes = len(task.classes)
    classes, counts = np.unique(labels, return_counts=True)
    needed = n_classes * k
    if len(labels) < needed:
        raise TunerError(
            f"{source}: {len(labels)} training rows cannot make {k} folds that each hold "
            f"all {n_classes} classes; use at least {needed} (e.g. --subset {needed * 10})"
            + (QUANTITY_HINT if n_classes > FEW_CLASSES else "")
        )
    missing = sorted(set(range(n_classes)) - {int(c) for c in classes})
    scarce = [(int(c), int(n)) for c, n in zip(classes, counts, strict=True) if n < k]
    if missing or scarce:
        name = task.classes
        detail = ", ".join(
            [f"class {plain(name[c])}: none" for c in missing]
            + [f"class {plain(name[c])}: {n}" for c, n in scarce]
        )
        raise TunerError(
            f"{source}: every class needs at least {k} training rows for {k}-fold CV "
            f"({detail}); use more rows (a larger --subset), or drop or merge rare classes"
            + (QUANTITY_HINT if n_classes > FEW_CLASSES else "")
        )
