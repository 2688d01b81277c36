"""Data: images, arrays or tables from any source, encoded, fingerprinted, and the folds
every trial shares.

Nothing here trains or imports a deep-learning framework at import time (Keras is
imported only to download MNIST for users who ask for it by name; pandas and pyarrow
only to read a table).
"""

from tuner.data._datasets import (
    DEBIAN_FASHION_MNIST,
    DEFAULT_TEST_FRACTION,
    N_CLASSES,
    N_PIXELS,
    TABLE_SUFFIXES,
    DataCache,
    Dataset,
    DatasetSpec,
    is_table,
    load_dataset,
    load_idx_folder,
    load_npz,
    read_idx,
    read_table,
    stratified_sample,
)
from tuner.data._folds import (
    check_foldable,
    repeat_seed,
    repeated_folds,
    shuffled_folds,
    stratified_folds,
    task_folds,
)
from tuner.data._limits import (
    MAX_ARRAY_BYTES,
    MAX_CATEGORIES,
    MAX_CLASSES,
    MAX_DEFINITION_BYTES,
    MAX_FEATURES,
    MAX_GRID_POINTS,
    MAX_TABLE_BYTES,
    MAX_UNITS,
    MIN_UNITS,
)
from tuner.data._scaling import FoldArrays, Standardiser, final_arrays, fold_arrays
from tuner.data._task import (
    CLASSIFICATION,
    NUMERIC,
    ONE_HOT,
    PIXELS,
    REGRESSION,
    TASKS,
    Feature,
    Task,
    check_task_name,
)

__all__ = [
    "CLASSIFICATION",
    "DEBIAN_FASHION_MNIST",
    "DEFAULT_TEST_FRACTION",
    "MAX_ARRAY_BYTES",
    "MAX_CATEGORIES",
    "MAX_CLASSES",
    "MAX_DEFINITION_BYTES",
    "MAX_FEATURES",
    "MAX_GRID_POINTS",
    "MAX_TABLE_BYTES",
    "MAX_UNITS",
    "MIN_UNITS",
    "NUMERIC",
    "N_CLASSES",
    "N_PIXELS",
    "ONE_HOT",
    "PIXELS",
    "REGRESSION",
    "TABLE_SUFFIXES",
    "TASKS",
    "DataCache",
    "Dataset",
    "DatasetSpec",
    "Feature",
    "FoldArrays",
    "Standardiser",
    "Task",
    "check_foldable",
    "check_task_name",
    "final_arrays",
    "fold_arrays",
    "is_table",
    "load_dataset",
    "load_idx_folder",
    "load_npz",
    "read_idx",
    "read_table",
    "repeat_seed",
    "repeated_folds",
    "shuffled_folds",
    "stratified_folds",
    "stratified_sample",
    "task_folds",
]
