"""Datasets: images, arrays or tables from Keras, Debian's IDX files, or the user's own files.

Whatever the source, the result is the same: ``(n, features)`` float32 model inputs and
targets (class ids or values), validated and encoded by the rules of
:mod:`tuner.data._features` before any training starts, a :class:`~tuner.data.Task` saying
what the study learns, and a fingerprint so that a worker joining a study can prove it
trains on the same data as everyone else.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import lzma
import math
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import numpy as np

from tuner.data._features import (
    apply_target,
    array_labels,
    array_rule,
    encode_array,
    encode_table,
    encode_target,
    missing_rows,
    table_features,
)
from tuner.data._limits import MAX_ARRAY_BYTES, MAX_TABLE_BYTES
from tuner.data._shown import shown
from tuner.data._task import PIXELS, REGRESSION, Feature, Task, check_task_name
from tuner.errors import TunerError

log = logging.getLogger(__name__)

N_CLASSES = 10
N_PIXELS = 784
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
KERAS_CACHE = Path.home() / ".keras" / "datasets"
IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
NPZ_PAIR = ("x", "y")
"""An archive of one set of rows: the test set is held out (``--test-fraction``)."""
NPY_MAGIC = b"\x93NUMPY"
# What parsing a damaged or hostile file can raise, in the standard library's gzip, zlib,
# zipfile, lzma and struct and in numpy's .npy header parser.
_UNREADABLE = (
    OSError,
    EOFError,
    ValueError,
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    struct.error,
    NotImplementedError,  # a zip member compressed by a method zipfile lacks
    RuntimeError,  # an encrypted zip member
    SyntaxError,  # numpy's .npy header parser (ast) on a damaged header
    tokenize.TokenError,  # likewise
)


DEFAULT_TEST_FRACTION = 0.2
"""Share of the rows held out as the test set when the data brings none of its own."""
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".feather")
"""Files read as tables (pandas, pyarrow); they need ``--target COLUMN``."""


@dataclass(frozen=True)
class DatasetSpec:
    """What the user asked for; recorded on the study so that workers load the same data.

    Attributes:
        source: ``mnist``, ``fashion-mnist``, or an absolute path (IDX folder, ``.npz``,
            ``.npy``, or a table: ``.csv``, ``.tsv``, ``.parquet``, ``.feather``).
        subset: Train on a seeded sample of this many training rows (stratified by class).
        seed: Seeds ``subset`` and the held-out test rows.
        target: A table's target column, or for a ``.npy`` of inputs the ``.npy`` of
            labels or values (an absolute path).
        task: ``classification`` or ``regression``; None infers it from the target.
        test: A table file holding the test rows (same columns).
        test_fraction: Share of rows held out as the test set (seeded, stratified by
            class) for data without a test set of its own; None: :data:`DEFAULT_TEST_FRACTION`.
        columns: The feature columns of a table; None: all but the target.
        ignore_columns: Columns left out of a table's features.
        drop_missing: Leave out rows with a missing, NaN or infinite value in a used
            column instead of refusing the data.
    """

    source: str
    subset: int | None = None
    seed: int = 0
    target: str | None = None
    task: str | None = None
    test: str | None = None
    test_fraction: float | None = None
    columns: tuple[str, ...] | None = None
    ignore_columns: tuple[str, ...] = ()
    drop_missing: bool = False

    def to_dict(self) -> dict[str, object]:
        """The record; choices left at their defaults are left out, so the record of MNIST
        or an IDX folder is what it was before tables existed."""
        data: dict[str, object] = {"source": self.source, "subset": self.subset, "seed": self.seed}
        for name in ("target", "task", "test", "test_fraction"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        if self.columns is not None:
            data["columns"] = list(self.columns)
        if self.ignore_columns:
            data["ignore_columns"] = list(self.ignore_columns)
        if self.drop_missing:
            data["drop_missing"] = True
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> DatasetSpec:
        subset = data.get("subset")
        columns = data.get("columns")
        fraction = data.get("test_fraction")

        def text(name: str) -> str | None:
            value = data.get(name)
            return None if value is None else str(value)

        return cls(
            source=str(data["source"]),
            subset=int(subset) if subset is not None else None,  # type: ignore[call-overload]
            seed=int(data.get("seed", 0)),  # type: ignore[call-overload]
            target=text("target"),
            task=text("task"),
            test=text("test"),
            test_fraction=float(fraction) if fraction is not None else None,  # type: ignore[arg-type]
            columns=tuple(str(c) for c in columns) if columns is not None else None,  # type: ignore[attr-defined]
            ignore_columns=tuple(str(c) for c in data.get("ignore_columns", ())),  # type: ignore[attr-defined]
            drop_missing=bool(data.get("drop_missing", False)),
        )

    @classmethod
    def parse(
        cls,
        source: str,
        subset: int | None = None,
        seed: int = 0,
        *,
        target: str | None = None,
        task: str | None = None,
        test: str | None = None,
        test_fraction: float | None = None,
        columns: Sequence[str] | None = None,
        ignore_columns: Sequence[str] = (),
        drop_missing: bool = False,
    ) -> DatasetSpec:
        """Named datasets stay names; paths become absolute so any worker can find them.

        Raises:
            TunerError: A choice that does not fit the source (``--target`` for MNIST, a
                table without ``--target``...), checked before anything is read.
        """
        if source not in ("mnist", "fashion-mnist"):
            source = str(Path(source).expanduser().resolve())
        if subset is not None and subset <= 0:
            raise TunerError(f"--subset must be a positive number of images, got {subset}")
        check_task_name(task)
        table = is_table(source)
        npy = source.lower().endswith(".npy")
        if table and not target:
            raise TunerError(f"{source}: a table needs --target COLUMN, the column to predict")
        if npy and not target:
            raise TunerError(
                f"{source}: a .npy of inputs needs --target LABELS.npy, the labels or values "
                "(or save both in one .npz: numpy.savez(PATH, x=..., y=...))"
            )
        if target and not (table or npy):
            raise TunerError(
                "--target names a table's column (.csv, .tsv, .parquet, .feather) or the "
                f"labels .npy beside a .npy of inputs; {source} is neither"
            )
        if npy and target:
            target = str(Path(target).expanduser().resolve())
        if (test or columns is not None or ignore_columns) and not table:
            raise TunerError(
                "--test, --columns and --ignore-columns apply to tables (.csv, .tsv, .parquet, "
                f".feather); {source} is not one"
            )
        if test:
            if not is_table(test):
                raise TunerError(f"--test {test}: not a table (.csv, .tsv, .parquet, .feather)")
            test = str(Path(test).expanduser().resolve())
        if test and test_fraction is not None:
            raise TunerError("--test names the test rows; leave --test-fraction out with it")
        return cls(
            source=source,
            subset=subset,
            seed=seed,
            target=target,
            task=task,
            test=test,
            test_fraction=test_fraction,
            columns=tuple(columns) if columns is not None else None,
            ignore_columns=tuple(ignore_columns),
            drop_missing=drop_missing,
        )


def is_table(source: str) -> bool:
    """Whether ``source`` is read as a table (by its suffix)."""
    return source.lower().endswith(TABLE_SUFFIXES)


@dataclass(frozen=True)
class Dataset:
    """Model inputs (``(n, features)`` float32) and targets, training and test split.

    Targets are class ids ``0..C-1`` (int32) for classification and values (float32) for
    regression; ``task`` says which, and what became of each column.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: Task = field(default_factory=Task)

    def fingerprint(self) -> str:
        digest = hashlib.blake2b(digest_size=16)
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        if self.task != Task():  # the seed's data keeps the fingerprint it always had
            digest.update(json.dumps(self.task.to_dict(), sort_keys=True).encode())
        return digest.hexdigest()


class DataCache:
    """Each dataset loaded and fingerprinted once per process, however many studies use it."""

    def __init__(self) -> None:
        self._loaded: dict[DatasetSpec, tuple[Dataset, str]] = {}

    def load(self, spec: DatasetSpec) -> tuple[Dataset, str]:
        if spec not in self._loaded:
            dataset = load_dataset(spec)
            self._loaded[spec] = (dataset, dataset.fingerprint())
        return self._loaded[spec]

    def verified(self, spec: DatasetSpec, fingerprint: str, study_name: str) -> Dataset:
        """The data, after checking it is what the study was created with."""
        dataset, actual = self.load(spec)
        if actual != fingerprint:
            raise TunerError(
                f"study '{study_name}': the data at {spec.source} differs from the data the "
                "study was created with (fingerprint mismatch); give this worker the same files"
            )
        return dataset


def load_dataset(spec: DatasetSpec) -> Dataset:
    """Load, validate, encode and (if asked) subsample the training rows.

    Raises:
        TunerError: The data cannot be read or breaks a rule of
            :mod:`tuner.data._features`, in one line, before any model is built.
    """
    table = is_table(spec.source)
    dataset = _from_tables(spec) if table else _from_arrays(_load_raw(spec), spec)
    if spec.subset is not None:
        if spec.subset > len(dataset.y_train):
            raise TunerError(
                f"--subset {spec.subset} is larger than the {len(dataset.y_train)} training rows"
            )
        if dataset.task.regression:
            rng = np.random.default_rng(spec.seed)
            keep = np.sort(rng.permutation(len(dataset.y_train))[: spec.subset])
        else:
            keep = stratified_sample(dataset.y_train, spec.subset, spec.seed)
        dataset = replace(dataset, x_train=dataset.x_train[keep], y_train=dataset.y_train[keep])
    return dataset


def _held_out(
    y: np.ndarray, regression: bool, fraction: float, seed: int, source: str
) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, test rows): a seeded share held out, stratified by class."""
    size = round(len(y) * fraction)
    if size < 1 or size >= len(y):
        raise TunerError(
            f"{source}: {len(y)} rows cannot spare a test set of {fraction:g} of them; give "
            "more rows or another --test-fraction"
        )
    if regression:
        test = np.sort(np.random.default_rng(seed + 1).permutation(len(y))[:size])
    else:
        test = stratified_sample(y, size, seed + 1)
    train = np.setdiff1d(np.arange(len(y)), test)
    return train, test


def _from_arrays(raw: dict[str, np.ndarray], spec: DatasetSpec) -> Dataset:
    source = spec.source
    own_test = "x_test" in raw
    if own_test and spec.test_fraction is not None:
        raise TunerError(
            f"{source}: the data brings its own test set (x_test, y_test); leave "
            "--test-fraction out"
        )
    x_all = raw["x_train"]
    y_raw = array_labels(raw["y_train"], source, "y_train")
    if x_all.ndim == 0 or len(x_all) != len(y_raw):
        rows = len(x_all) if x_all.ndim else 0
        raise TunerError(f"{source}: {rows} training rows of inputs but {len(y_raw)} of labels")
    y_all, kind, classes = encode_target(y_raw, "y_train", source, spec.task)
    if own_test:
        x_train, y_train = x_all, y_all
        x_test = raw["x_test"]
        y_test_raw = array_labels(raw["y_test"], source, "y_test")
        if x_test.ndim == 0 or len(x_test) != len(y_test_raw):
            raise TunerError(f"{source}: the test inputs and labels differ in length")
        if math.prod(x_test.shape[1:]) != math.prod(x_train.shape[1:]):
            raise TunerError(
                f"{source}: x_test rows have shape {x_test.shape[1:]}, x_train rows "
                f"{x_train.shape[1:]}; they must hold as many values"
            )
    else:
        fraction = spec.test_fraction or DEFAULT_TEST_FRACTION
        train, test = _held_out(y_all, kind == REGRESSION, fraction, spec.seed, source)
        x_train, y_train, x_test = x_all[train], y_all[train], x_all[test]
        y_test_raw = y_raw[test]
    rule = array_rule(x_train)
    train_inputs = encode_array(x_train, "x_train", source, rule)
    task = Task(
        kind=kind,
        classes=classes,
        features=(Feature("pixels" if rule == PIXELS else "x", rule, train_inputs.shape[1]),),
    )
    return Dataset(
        x_train=train_inputs,
        y_train=y_train,
        x_test=encode_array(x_test, "x_test", source, rule),
        y_test=apply_target(y_test_raw, "y_test", task, source),
        task=task,
    )


def read_table(path: Path, what: str = "--dataset") -> Any:
    """A CSV, TSV, Parquet or Feather file as a pandas DataFrame, its size checked first.

    Raises:
        TunerError: Missing, too large, empty, or not a table of that format.
    """
    import pandas as pd

    if not path.is_file():
        raise TunerError(f"{what} {path}: no such file")
    size = path.stat().st_size
    if size > MAX_TABLE_BYTES:
        raise TunerError(
            f"{path}: {size} bytes; at most {MAX_TABLE_BYTES} bytes per table (MAX_TABLE_BYTES)"
        )
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            with path.open("rb") as handle:
                if b"\x00" in handle.read(65536):
                    raise TunerError(f"{path}: not a text {suffix[1:].upper()} file (binary data)")
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", low_memory=False)
        elif suffix == ".parquet":
            _check_parquet_size(path)
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_feather(path)
    except TunerError:
        raise
    except pd.errors.EmptyDataError:
        raise TunerError(f"{path}: the file is empty") from None
    except Exception as exc:  # pandas and pyarrow raise many types on a damaged file
        # The reader's message may quote the file: shown escaped.
        raise TunerError(
            f"{path}: not a readable {suffix[1:]} table ({shown(_first_line(exc))})"
        ) from None
    if frame.shape[0] == 0:
        raise TunerError(f"{path}: the table has no rows")
    if frame.columns.duplicated().any():
        twice = frame.columns[frame.columns.duplicated()][0]
        raise TunerError(f"{path}: column {shown(twice)} appears twice; name columns uniquely")
    frame.columns = [str(name) for name in frame.columns]
    return frame


def _check_parquet_size(path: Path) -> None:
    """Refuse a Parquet file whose row groups declare more than the table limit, unread."""
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(path).metadata
    declared = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    if declared > MAX_TABLE_BYTES:
        raise TunerError(
            f"{path}: declares {declared} bytes uncompressed; at most {MAX_TABLE_BYTES} "
            "(MAX_TABLE_BYTES)"
        )


def _from_tables(spec: DatasetSpec) -> Dataset:
    source = spec.source
    frame = read_table(Path(source))
    target = str(spec.target)
    if target not in frame.columns:
        listed = ", ".join(shown(c) for c in list(frame.columns)[:12])
        more = ", ..." if len(frame.columns) > 12 else ""
        raise TunerError(
            f"{source}: no column {shown(target)} to use as --target; its columns: {listed}{more}"
        )
    wanted = list(spec.columns) if spec.columns is not None else list(frame.columns)
    for name in [*wanted, *spec.ignore_columns]:
        if name not in frame.columns:
            raise TunerError(
                f"{source}: no column {shown(name)} (named in --columns/--ignore-columns)"
            )
    columns = [c for c in wanted if c != target and c not in spec.ignore_columns]
    if spec.columns is not None and target in spec.columns:
        raise TunerError(f"--columns names the target {shown(target)}; it cannot be a feature too")
    if not columns:
        raise TunerError(f"{source}: no feature columns besides the target {shown(target)}")
    frame = _without_missing(frame, [*columns, target], spec, source)
    y_all, kind, classes = encode_target(frame[target].to_numpy(), target, source, spec.task)
    if spec.test is None:
        fraction = spec.test_fraction or DEFAULT_TEST_FRACTION
        train, test = _held_out(y_all, kind == REGRESSION, fraction, spec.seed, source)
        train_frame, test_frame = frame.iloc[train], frame.iloc[test]
        y_train = y_all[train]
    else:
        train_frame, y_train = frame, y_all
        test_frame = read_table(Path(spec.test), "--test")
        if target not in test_frame.columns:
            raise TunerError(f"--test {spec.test}: no target column {shown(target)}")
        test_frame = _without_missing(
            test_frame, [c for c in [*columns, target] if c in test_frame.columns], spec, spec.test
        )
    features = table_features(train_frame, columns, source)
    task = Task(kind=kind, classes=classes, features=features, target=target)
    return Dataset(
        x_train=encode_table(train_frame, features, source),
        y_train=y_train,
        x_test=encode_table(test_frame, features, spec.test or source),
        y_test=apply_target(test_frame[target].to_numpy(), target, task, spec.test or source),
        task=task,
    )


def _without_missing(frame: Any, columns: list[str], spec: DatasetSpec, source: str) -> Any:
    """The rows with every used value present and finite; refused unless --drop-missing,
    which leaves such rows out and says how many (a warning in the log)."""
    bad = missing_rows(frame, columns, source, drop=spec.drop_missing)
    if not bad.any():
        return frame
    kept = frame[~bad]
    if len(kept) == 0:
        raise TunerError(f"{source}: every row has a missing value; nothing is left to train on")
    log.warning(
        "%s: --drop-missing left out %d of %d rows (a missing, NaN or infinite value)",
        source,
        int(bad.sum()),
        len(frame),
    )
    return kept


def stratified_sample(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Indices of a seeded sample whose class proportions match the full set's."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * size / len(labels)
    quota = np.floor(exact).astype(int)
    # Largest remainders get the leftover places, so the total is exactly `size`.
    for index in np.argsort(-(exact - quota), kind="stable")[: size - quota.sum()]:
        quota[index] += 1
    chosen = [
        rng.permutation(np.flatnonzero(labels == label))[:n]
        for label, n in zip(classes, quota, strict=True)
    ]
    return np.sort(np.concatenate(chosen))


def _load_raw(spec: DatasetSpec) -> dict[str, np.ndarray]:
    source = spec.source
    if source == "mnist":
        return _load_keras("mnist")
    if source == "fashion-mnist":
        if DEBIAN_FASHION_MNIST.is_dir():
            return load_idx_folder(DEBIAN_FASHION_MNIST)
        return _load_keras("fashion_mnist")
    path = Path(source)
    if path.is_dir():
        return load_idx_folder(path)
    if path.is_file() and path.suffix.lower() == ".npy":
        labels = Path(str(spec.target))
        if not labels.is_file():
            raise TunerError(f"--target {labels}: no such file")
        return {"x_train": load_npy(path, "x"), "y_train": load_npy(labels, "y")}
    if path.is_file():
        return load_npz(path)
    raise TunerError(
        f"dataset '{source}' not found: give mnist, fashion-mnist, a table (.csv, .tsv, "
        ".parquet, .feather) with --target, a .npz (x_train, y_train[, x_test, y_test] or "
        "x, y), or a folder of IDX files"
    )


def _load_keras(name: str) -> dict[str, np.ndarray]:
    import keras

    loader = getattr(keras.datasets, name)
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as exc:
        hint = (
            f"download {name}.npz elsewhere and put it at {KERAS_CACHE / (name + '.npz')}, "
            "or pass --dataset PATH.npz"
        )
        if name == "fashion_mnist":
            hint = "install Debian's dataset-fashion-mnist, or pass --dataset PATH to IDX files"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TunerError(f"could not load {name} via Keras ({reason}); {hint}") from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """A Keras-style archive of four ``.npy`` arrays.

    Read member by member, each ``.npy`` header checked (no pickled objects, declared size
    at most ``MAX_ARRAY_BYTES``) before its body is read, and the body read no further than
    the header promises: a hostile file can neither run code nor exhaust memory.
    """
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise TunerError(_not_a_zip(path)) from None
    except _UNREADABLE as exc:
        raise TunerError(f"{path}: not a readable .npz dataset ({_first_line(exc)})") from None
    try:
        with archive:
            members = {name.removesuffix(".npy"): name for name in archive.namelist()}
            if all(key in members for key in NPZ_PAIR) and "x_train" not in members:
                x, y = (_read_npy(path, archive, members[key], key) for key in NPZ_PAIR)
                return {"x_train": x, "y_train": y}
            wanted = NPZ_KEYS if "x_test" in members or "y_test" in members else NPZ_KEYS[:2]
            missing = [key for key in wanted if key not in members]
            if missing:
                raise TunerError(
                    f"{path}: missing array(s) {', '.join(missing)}; a dataset .npz needs "
                    f"{', '.join(NPZ_KEYS)} (or x_train, y_train, or x, y: the test set is "
                    "then held out)"
                )
            return {key: _read_npy(path, archive, members[key], key) for key in wanted}
    except TunerError:
        raise
    except _UNREADABLE as exc:
        raise TunerError(f"{path}: not a readable .npz dataset ({_first_line(exc)})") from None


def _not_a_zip(path: Path) -> str:
    with path.open("rb") as handle:
        if handle.read(len(NPY_MAGIC)) == NPY_MAGIC:
            return (
                f"{path}: a single .npy array, not an .npz archive; name it *.npy and pass "
                "--target LABELS.npy, or save numpy.savez(PATH, x=..., y=...)"
            )
    return f"{path}: not a readable .npz dataset (not a zip archive)"


def _read_npy(path: Path, archive: zipfile.ZipFile, member: str, key: str) -> np.ndarray:
    """One member of an .npz, its header checked before its body is read."""
    with archive.open(member) as handle:
        return _read_npy_from(path, handle, key)


def load_npy(path: Path, key: str) -> np.ndarray:
    """One ``.npy`` file, read under the same checks as an ``.npz`` member."""
    try:
        with path.open("rb") as handle:
            return _read_npy_from(path, handle, key)
    except TunerError:
        raise
    except _UNREADABLE as exc:
        raise TunerError(f"{path}: not a readable .npy array ({_first_line(exc)})") from None


def _read_npy_from(path: Path, handle: IO[bytes], key: str) -> np.ndarray:
    """An ``.npy`` stream: no pickled objects, at most ``MAX_ARRAY_BYTES`` declared, and the
    body read no further than the header promises."""
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(handle)
    elif version == (2, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(handle)
    else:
        raise TunerError(f"{path}: {key} is in .npy format {version}; save it with numpy.save")
    if dtype.hasobject:
        raise TunerError(
            f"{path}: {key} holds Python objects (pickled), which tuner never loads: "
            "save arrays of numbers (or fixed-width strings for labels)"
        )
    declared = math.prod(shape) * dtype.itemsize
    if declared > MAX_ARRAY_BYTES:
        raise TunerError(
            f"{path}: {key} declares shape {shape} of {dtype} = {declared} bytes; "
            f"at most {MAX_ARRAY_BYTES} bytes per array (MAX_ARRAY_BYTES)"
        )
    body = handle.read(declared + 1)
    if len(body) != declared:
        held = "more" if len(body) > declared else str(len(body))
        raise TunerError(
            f"{path}: {key} is truncated or corrupt: its header promises {declared} bytes, "
            f"the file holds {held}"
        )
    array = np.frombuffer(body, dtype=dtype)
    if fortran_order:
        return array.reshape(shape[::-1]).transpose()
    return array.reshape(shape)


def load_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    """The four MNIST IDX files, gzipped or not, under their standard names."""
    arrays = {}
    for key, stem in IDX_NAMES.items():
        candidates = [folder / stem, folder / f"{stem}.gz"]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise TunerError(f"{folder}: missing {stem} (or {stem}.gz)")
        arrays[key] = read_idx(path)
    return arrays


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (unsigned-byte data, the only type MNIST uses), gzipped or not.

    The header is read and checked first (1 to 3 dimensions, a declared size of at most
    ``MAX_ARRAY_BYTES``), then the body is read, or decompressed, no further than the
    header promises: a small gzip file cannot expand into gigabytes.
    """
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            return _read_idx_from(path, handle)
    except TunerError:
        raise
    except _UNREADABLE as exc:
        raise TunerError(f"{path}: cannot read IDX file ({_first_line(exc)})") from None


def _read_idx_from(path: Path, handle: io.BufferedIOBase) -> np.ndarray:
    magic = handle.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0:
        raise TunerError(f"{path}: not an IDX file (bad magic number)")
    dtype_code, n_dims = magic[2], magic[3]
    if dtype_code != 0x08:
        raise TunerError(f"{path}: IDX data type {dtype_code:#x} unsupported; expected 0x08")
    if not 1 <= n_dims <= 3:
        raise TunerError(
            f"{path}: IDX header declares {n_dims} dimensions; MNIST's files have 1 (labels) "
            "or 3 (images)"
        )
    dims = handle.read(4 * n_dims)
    if len(dims) < 4 * n_dims:
        raise TunerError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{n_dims}I", dims)
    declared = math.prod(shape)  # a Python int: no overflow, whatever the header says
    if declared > MAX_ARRAY_BYTES:
        raise TunerError(
            f"{path}: IDX header declares {shape} = {declared} bytes; at most "
            f"{MAX_ARRAY_BYTES} bytes per file (MAX_ARRAY_BYTES)"
        )
    body = handle.read(declared + 1)
    if len(body) != declared:
        held = "more" if len(body) > declared else str(len(body))
        raise TunerError(
            f"{path}: truncated or corrupt: header promises {declared} bytes, file holds {held}"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
