"""Datasets: MNIST-shaped images from Keras, Debian's IDX files, or the user's own files.

Whatever the source, the result is the same: 784 float32 inputs in [0, 1] per image and
integer labels 0..9, validated before any training starts, plus a fingerprint so that a
worker joining a study can prove it trains on the same data as everyone else.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import math
import struct
import tokenize
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuner.data._limits import MAX_ARRAY_BYTES
from tuner.errors import TunerError

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


@dataclass(frozen=True)
class DatasetSpec:
    """What the user asked for; recorded on the study so that workers load the same data."""

    source: str
    subset: int | None = None
    seed: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "subset": self.subset, "seed": self.seed}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> DatasetSpec:
        subset = data.get("subset")
        return cls(
            source=str(data["source"]),
            subset=int(subset) if subset is not None else None,  # type: ignore[call-overload]
            seed=int(data.get("seed", 0)),  # type: ignore[call-overload]
        )

    @classmethod
    def parse(cls, source: str, subset: int | None = None, seed: int = 0) -> DatasetSpec:
        """Named datasets stay names; paths become absolute so any worker can find them."""
        if source not in ("mnist", "fashion-mnist"):
            source = str(Path(source).expanduser().resolve())
        if subset is not None and subset <= 0:
            raise TunerError(f"--subset must be a positive number of images, got {subset}")
        return cls(source=source, subset=subset, seed=seed)


@dataclass(frozen=True)
class Dataset:
    """Flattened, scaled images and integer labels, training and test split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def fingerprint(self) -> str:
        digest = hashlib.blake2b(digest_size=16)
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
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
    """Load, validate and (if asked) subsample the training images."""
    raw = _load_raw(spec.source)
    dataset = Dataset(
        x_train=_images(raw["x_train"], "x_train", spec.source),
        y_train=_labels(raw["y_train"], "y_train", spec.source),
        x_test=_images(raw["x_test"], "x_test", spec.source),
        y_test=_labels(raw["y_test"], "y_test", spec.source),
    )
    for split in ("train", "test"):
        n_images = len(getattr(dataset, f"x_{split}"))
        n_labels = len(getattr(dataset, f"y_{split}"))
        if n_images != n_labels:
            raise TunerError(
                f"{spec.source}: {n_images} {split} images but {n_labels} {split} labels"
            )
    if spec.subset is not None:
        if spec.subset > len(dataset.y_train):
            raise TunerError(
                f"--subset {spec.subset} is larger than the {len(dataset.y_train)} training images"
            )
        keep = stratified_sample(dataset.y_train, spec.subset, spec.seed)
        dataset = Dataset(
            dataset.x_train[keep], dataset.y_train[keep], dataset.x_test, dataset.y_test
        )
    return dataset


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


def _load_raw(source: str) -> dict[str, np.ndarray]:
    if source == "mnist":
        return _load_keras("mnist")
    if source == "fashion-mnist":
        if DEBIAN_FASHION_MNIST.is_dir():
            return load_idx_folder(DEBIAN_FASHION_MNIST)
        return _load_keras("fashion_mnist")
    path = Path(source)
    if path.is_dir():
        return load_idx_folder(path)
    if path.is_file():
        return load_npz(path)
    raise TunerError(
        f"dataset '{source}' not found: give mnist, fashion-mnist, a .npz file "
        "(x_train, y_train, x_test, y_test) or a folder of IDX files"
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
            missing = [key for key in NPZ_KEYS if key not in members]
            if missing:
                raise TunerError(
                    f"{path}: missing array(s) {', '.join(missing)}; "
                    f"a dataset .npz needs {', '.join(NPZ_KEYS)}"
                )
            return {key: _read_npy(path, archive, members[key], key) for key in NPZ_KEYS}
    except TunerError:
        raise
    except _UNREADABLE as exc:
        raise TunerError(f"{path}: not a readable .npz dataset ({_first_line(exc)})") from None


def _not_a_zip(path: Path) -> str:
    with path.open("rb") as handle:
        if handle.read(len(NPY_MAGIC)) == NPY_MAGIC:
            return (
                f"{path}: a single .npy array, not an .npz archive; save the four arrays "
                "with numpy.savez(PATH, x_train=..., y_train=..., x_test=..., y_test=...)"
            )
    return f"{path}: not a readable .npz dataset (not a zip archive)"


def _read_npy(path: Path, archive: zipfile.ZipFile, member: str, key: str) -> np.ndarray:
    """One member of an .npz, its header checked before its body is read."""
    with archive.open(member) as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise TunerError(f"{path}: {key} is in .npy format {version}; save it with numpy.savez")
        if dtype.hasobject:
            raise TunerError(
                f"{path}: {key} holds Python objects (pickled), which tuner never loads: "
                "save arrays of numbers"
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
            f"the archive holds {held}"
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


def _real_numbers(array: np.ndarray, name: str, source: str, expected: str, item: str) -> None:
    """The check every array of every format passes first: real numbers, all finite.

    NaN or infinity would train every grid point into a diverged loss, each given up
    after training; refused here, the file and the array are named before any work.
    """
    real = np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    if not real:
        raise TunerError(f"{source}: {name} has dtype {array.dtype}; expected {expected}")
    if np.issubdtype(array.dtype, np.floating):
        finite = np.isfinite(array)
        if not finite.all():
            first = int(np.argwhere(~finite)[0][0])
            raise TunerError(
                f"{source}: {name} holds NaN or infinite values (first at {item} {first}); "
                f"expected {expected}"
            )


def _images(array: np.ndarray, name: str, source: str) -> np.ndarray:
    if array.ndim == 3 and array.shape[1:] == (28, 28):
        array = array.reshape(len(array), N_PIXELS)
    if array.ndim != 2 or array.shape[1] != N_PIXELS:
        raise TunerError(
            f"{source}: {name} has shape {array.shape}; expected (n, 28, 28) or (n, 784)"
        )
    _real_numbers(array, name, source, "numbers 0..255", "image")
    if len(array) == 0:
        raise TunerError(f"{source}: {name} is empty")
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 255:
        raise TunerError(f"{source}: {name} values span {low}..{high}; expected grey levels 0..255")
    return (array.astype(np.float32) / np.float32(255.0)).astype(np.float32)


def _labels(array: np.ndarray, name: str, source: str) -> np.ndarray:
    if array.ndim == 2 and array.shape[1] == N_CLASSES:
        _real_numbers(array, name, source, "integers 0..9", "label")
        array = array.argmax(axis=1)
    if array.ndim != 1:
        raise TunerError(f"{source}: {name} has shape {array.shape}; expected (n,) class ids")
    _real_numbers(array, name, source, "integers 0..9", "label")
    whole = np.issubdtype(array.dtype, np.integer) or (
        np.issubdtype(array.dtype, np.floating) and bool(np.all(array == np.round(array)))
    )
    if not whole:
        raise TunerError(f"{source}: {name} has dtype {array.dtype}; expected integers 0..9")
    if len(array) and (array.min() < 0 or array.max() >= N_CLASSES):
        raise TunerError(
            f"{source}: {name} holds labels {array.min()}..{array.max()}; expected 0..9"
        )
    return array.astype(np.int32)
