"""Datasets: MNIST-shaped images from Keras, Debian's IDX files, or the user's own files.

Whatever the source, the result is the same: 784 float32 inputs in [0, 1] per image and
integer labels 0..9, validated before any training starts, plus a fingerprint so that a
worker joining a study can prove it trains on the same data as everyone else.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
    """A Keras-style archive; never unpickles, so a hostile file cannot run code."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise TunerError(
                    f"{path}: missing array(s) {', '.join(missing)}; "
                    f"a dataset .npz needs {', '.join(NPZ_KEYS)}"
                )
            return {key: archive[key] for key in NPZ_KEYS}
    except TunerError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise TunerError(f"{path}: not a readable .npz dataset ({exc})") from None


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
    """Parse one IDX file (unsigned-byte data, the only type MNIST uses)."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            payload = handle.read()
    except (OSError, EOFError) as exc:
        raise TunerError(f"{path}: cannot read IDX file ({exc})") from None
    if len(payload) < 4 or payload[0] != 0 or payload[1] != 0:
        raise TunerError(f"{path}: not an IDX file (bad magic number)")
    dtype_code, n_dims = payload[2], payload[3]
    if dtype_code != 0x08:
        raise TunerError(f"{path}: IDX data type {dtype_code:#x} unsupported; expected 0x08")
    header = 4 + 4 * n_dims
    if len(payload) < header:
        raise TunerError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{n_dims}I", payload[4:header])
    expected = int(np.prod(shape))
    if len(payload) - header != expected:
        raise TunerError(
            f"{path}: truncated or corrupt: header promises {expected} bytes, "
            f"file holds {len(payload) - header}"
        )
    return np.frombuffer(payload, dtype=np.uint8, offset=header).reshape(shape)


def _images(array: np.ndarray, name: str, source: str) -> np.ndarray:
    if array.ndim == 3 and array.shape[1:] == (28, 28):
        array = array.reshape(len(array), N_PIXELS)
    if array.ndim != 2 or array.shape[1] != N_PIXELS:
        raise TunerError(
            f"{source}: {name} has shape {array.shape}; expected (n, 28, 28) or (n, 784)"
        )
    if not np.issubdtype(array.dtype, np.number):
        raise TunerError(f"{source}: {name} has dtype {array.dtype}; expected numbers 0..255")
    if len(array) == 0:
        raise TunerError(f"{source}: {name} is empty")
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 255:
        raise TunerError(f"{source}: {name} values span {low}..{high}; expected grey levels 0..255")
    return (array.astype(np.float32) / np.float32(255.0)).astype(np.float32)


def _labels(array: np.ndarray, name: str, source: str) -> np.ndarray:
    if array.ndim == 2 and array.shape[1] == N_CLASSES:
        array = array.argmax(axis=1)
    if array.ndim != 1:
        raise TunerError(f"{source}: {name} has shape {array.shape}; expected (n,) class ids")
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
