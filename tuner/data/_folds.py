"""Deterministic stratified k-fold splits.

Every trial of a study must see the very same folds, otherwise grid points would be
compared on different data; the split is therefore a pure function of the labels and a
seed recorded on the study.
"""

from __future__ import annotations

import numpy as np


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
