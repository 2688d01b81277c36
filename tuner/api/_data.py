"""The data a launch names: a spec from the options, and in-memory data given a file.

A study records where its data lives so that any worker can load it and prove, by its
fingerprint, that it trains on the same rows. Data handed to :func:`tuner.launch` in
memory (a pandas DataFrame, or arrays) therefore gets a file first: written once, under
a name made of its content's hash, into ``tuner-data/`` of the working folder (the
folder the default SQLite storage lives in), and the study records that file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from tuner.api._options import LaunchOptions, check_known, documented
from tuner.data import DatasetSpec, Task, load_dataset
from tuner.errors import TunerError
from tuner.study import inert

DATA_FOLDER = Path("tuner-data")
"""Where in-memory data is written for the workers to load (under the working folder)."""


def dataset_spec(chosen: LaunchOptions) -> DatasetSpec:
    """The dataset spec of ``tuner launch``'s data options, checked before any data is read."""
    return DatasetSpec.parse(
        chosen.dataset,
        chosen.subset,
        target=chosen.target,
        task=chosen.task,
        test=chosen.test,
        test_fraction=chosen.test_fraction,
        columns=_names(chosen.columns) if chosen.columns is not None else None,
        ignore_columns=_names(chosen.ignore_columns or ""),
        drop_missing=chosen.drop_missing,
    )


def _names(listed: str | Sequence[str]) -> list[str]:
    """Column names: the CLI's comma-separated text, or (in Python) a list of names."""
    names = listed.split(",") if isinstance(listed, str) else [str(name) for name in listed]
    return [name.strip() for name in names if name.strip()]


def in_memory_source(dataset: Any, folder: Path = DATA_FOLDER) -> str | None:
    """The file that holds ``dataset`` when it is data rather than a name or a path.

    A DataFrame becomes a Parquet file (its column types kept); a ``(x, y)`` pair, a
    ``(x_train, y_train, x_test, y_test)`` tuple or a mapping of those names becomes an
    ``.npz``. None for a name or a path, which the spec reads itself.

    Raises:
        TunerError: A sequence or mapping that is not one of those shapes.
    """
    if isinstance(dataset, (str, os.PathLike)):
        return None
    import pandas as pd

    if isinstance(dataset, pd.DataFrame):
        frame = dataset.copy()
        frame.columns = [str(name) for name in frame.columns]
        content = pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
        name = hashlib.sha256(content + "\0".join(frame.columns).encode()).hexdigest()[:16]
        return str(_written(folder, f"frame-{name}.parquet", frame.to_parquet))
    arrays = _arrays_of(dataset)
    digest = hashlib.sha256()
    for key in sorted(arrays):
        digest.update(f"{key}{arrays[key].shape}{arrays[key].dtype}".encode())
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())

    def save(path: str) -> None:
        np.savez(path, **arrays)  # type: ignore[arg-type]

    return str(_written(folder, f"arrays-{digest.hexdigest()[:16]}.npz", save))


def _arrays_of(dataset: Any) -> dict[str, np.ndarray]:
    keys = ("x_train", "y_train", "x_test", "y_test")
    if isinstance(dataset, Mapping):
        given = {str(k): np.asarray(v) for k, v in dataset.items()}
        if set(given) in ({"x", "y"}, set(keys[:2]), set(keys)):
            return given
    elif isinstance(dataset, Sequence) and len(dataset) in (2, 4):
        names = ("x", "y") if len(dataset) == 2 else keys
        return {name: np.asarray(part) for name, part in zip(names, dataset, strict=True)}
    raise TunerError(
        "dataset: give a name, a path, a pandas DataFrame (with target=COLUMN), (x, y), "
        "(x_train, y_train, x_test, y_test), or a dict of those arrays"
    )


def _written(folder: Path, name: str, write: Any) -> Path:
    """``folder/name``, written atomically unless it already exists (same content)."""
    path = (folder / name).resolve()
    if path.is_file():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        os.close(handle)
        try:
            write(temporary)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    except OSError as exc:
        raise TunerError(f"cannot write the data to {path}: {exc.strerror}") from None
    return path


DATA_OPTIONS = (
    "dataset",
    "target",
    "task",
    "test",
    "test_fraction",
    "columns",
    "ignore_columns",
    "drop_missing",
    "subset",
)
"""The launch options that choose the data: what ``tuner data`` takes."""


@dataclass(frozen=True)
class DataSummary:
    """What tuner makes of a data set: ``tuner data``.

    Attributes:
        source: Where the data comes from.
        task: The task, its classes and each column's rule.
        train_rows: Rows cross-validation trains and validates on.
        test_rows: Rows of the test set (its own, or held out).
        class_counts: Training rows per class (empty for a regression).
    """

    source: str
    task: Task
    train_rows: int
    test_rows: int
    class_counts: dict[str, int]

    def render(self, console: Console) -> None:
        """Print the summary: the task, then one line per column and per class."""
        console.print(
            f"{self.source}: {self.train_rows} training rows, {self.test_rows} test rows; "
            f"{self.task.describe()}; scored by {self.task.metric_label}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        for feature in self.task.features:
            console.print(f"  {inert(feature.describe())}", highlight=False, markup=False)
        if self.task.regression:
            console.print(
                f"  target {inert(str(self.task.target or 'y'))}: values, standardised per "
                "fold for training (R² does not depend on it)",
                highlight=False,
                markup=False,
            )
        for name, count in self.class_counts.items():
            console.print(f"  class {inert(name)}: {count} rows", highlight=False, markup=False)


@documented((LaunchOptions, DATA_OPTIONS))
def describe_data(dataset: Any = LaunchOptions.dataset, **options: Any) -> DataSummary:
    """Load, check and encode a data set as ``tuner launch`` would, and say what it became:
    ``tuner data``. Nothing is trained and no storage is touched.

    Args:
        dataset: As for :func:`tuner.launch`.
        **options: The data options of ``tuner launch``:
    OPTIONS

    Returns:
        The task, each column's rule, the rows and the classes.

    Raises:
        TunerError: The data cannot be read or breaks a rule, in one line.
    """
    check_known(options, (LaunchOptions, DATA_OPTIONS))
    source = in_memory_source(dataset)
    chosen = LaunchOptions.take({**options, "dataset": source or str(dataset)})
    spec = dataset_spec(chosen)
    loaded = load_dataset(spec)
    counts: dict[str, int] = {}
    if not loaded.task.regression:
        found = np.bincount(loaded.y_train, minlength=len(loaded.task.classes))
        counts = {name: int(n) for name, n in zip(loaded.task.classes, found, strict=True)}
    return DataSummary(spec.source, loaded.task, len(loaded.y_train), len(loaded.y_test), counts)
