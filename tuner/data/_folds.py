"""Deterministic stratified k-fold splits.

Every trial of a study must see the very same folds, otherwise grid points would be
compared on different data; the split is therefore a pure function of the labels and a
seed recorded on the study.
"""

from __future__ import annotations

import zlib

import numpy as np

from tuner.data._datasets import N_CLASSES
from tuner.errors import TunerError


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
    labels: np.ndarray, k: int, seeds: list[int] | tuple[int, ...]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The folds of repeated k-fold CV: one stratified k-fold split per seed, in order.

    Fold ``r * k + j`` of the result is fold ``j`` of the split seeded by ``seeds[r]``;
    with one seed it is :func:`stratified_folds` itself.
    """
    return [split for seed in seeds for split in stratified_folds(labels, k, seed)]


def check_foldable(labels: np.ndarray, k: int, source: str) -> None:
    """Refuse data too small for k-fold CV: every class must reach every fold.

    With fewer than ``k`` images of a class, some fold validates without it, and with
    fewer than ``N_CLASSES * k`` images some class is missing altogether: training
    would run and report accuracies that mean nothing (0.0 on a 5-image subset).
    """
    classes, counts = np.unique(labels, return_counts=True)
    needed = N_CLASSES * k
    if len(labels) < needed:
        raise TunerError(
            f"{source}: {len(labels)} training images cannot make {k} folds that each hold "
            f"all {N_CLASSES} classes; use at least {needed} (e.g. --subset {needed * 10})"
        )
    missing = sorted(set(range(N_CLASSES)) - {int(c) for c in classes})
    scarce = [(int(c), int(n)) for c, n in zip(classes, counts, strict=True) if n < k]
    if missing or scarce:
        detail = ", ".join(
            [f"class {c}: none" for c in missing] + [f"class {c}: {n}" for c, n in scarce]
        )
        raise TunerError(
            f"{source}: every class needs at least {k} training images for {k}-fold CV "
            f"({detail}); use more images (a larger --subset)"
        )
