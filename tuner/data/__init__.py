"""Data: MNIST-shaped images from any source, fingerprinted, and the folds every trial shares.

Nothing here trains or imports a deep-learning framework at import time (Keras is
imported only to download MNIST for users who ask for it by name).
"""

from tuner.data._datasets import (
    DEBIAN_FASHION_MNIST,
    N_CLASSES,
    N_PIXELS,
    DataCache,
    Dataset,
    DatasetSpec,
    load_dataset,
    load_idx_folder,
    load_npz,
    read_idx,
    stratified_sample,
)
from tuner.data._folds import check_foldable, repeat_seed, repeated_folds, stratified_folds
from tuner.data._limits import (
    MAX_ARRAY_BYTES,
    MAX_DEFINITION_BYTES,
    MAX_GRID_POINTS,
    MAX_UNITS,
    MIN_UNITS,
)

__all__ = [
    "DEBIAN_FASHION_MNIST",
    "MAX_ARRAY_BYTES",
    "MAX_DEFINITION_BYTES",
    "MAX_GRID_POINTS",
    "MAX_UNITS",
    "MIN_UNITS",
    "N_CLASSES",
    "N_PIXELS",
    "DataCache",
    "Dataset",
    "DatasetSpec",
    "check_foldable",
    "load_dataset",
    "load_idx_folder",
    "load_npz",
    "read_idx",
    "repeat_seed",
    "repeated_folds",
    "stratified_folds",
    "stratified_sample",
]
