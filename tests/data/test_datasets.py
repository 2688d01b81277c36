import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import synthetic_images
from tuner.data import (
    DEBIAN_FASHION_MNIST,
    DatasetSpec,
    load_dataset,
    read_idx,
    stratified_sample,
)
from tuner.errors import TunerError


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def write_idx_folder(folder: Path, gz: bool) -> dict[str, np.ndarray]:
    folder.mkdir()
    x_train, y_train = synthetic_images(50, seed=3)
    x_test, y_test = synthetic_images(20, seed=4)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    names = {
        "x_train": "train-images-idx3-ubyte",
        "y_train": "train-labels-idx1-ubyte",
        "x_test": "t10k-images-idx3-ubyte",
        "y_test": "t10k-labels-idx1-ubyte",
    }
    for key, name in names.items():
        write_idx(folder / name, arrays[key], gz)
    return arrays


def test_npz_is_flattened_scaled_and_labelled(synthetic_npz: Path) -> None:
    dataset = load_dataset(DatasetSpec.parse(str(synthetic_npz)))
    raw = np.load(synthetic_npz)
    assert dataset.x_train.shape == (300, 784) and dataset.x_test.shape == (100, 784)
    assert dataset.x_train.dtype == np.float32
    assert dataset.x_train.min() >= 0.0 and dataset.x_train.max() <= 1.0
    np.testing.assert_allclose(dataset.x_train[5], raw["x_train"][5].reshape(784) / 255.0)
    np.testing.assert_array_equal(dataset.y_train, raw["y_train"])


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_gzipped_or_not(tmp_path: Path, gz: bool) -> None:
    arrays = write_idx_folder(tmp_path / "idx", gz)
    dataset = load_dataset(DatasetSpec.parse(str(tmp_path / "idx")))
    np.testing.assert_array_equal(dataset.y_test, arrays["y_test"])
    np.testing.assert_allclose(dataset.x_train * 255, arrays["x_train"].reshape(50, 784), atol=1e-3)


def test_one_hot_labels_are_accepted(tmp_path: Path) -> None:
    x, y = synthetic_images(30, seed=5)
    path = tmp_path / "onehot.npz"
    np.savez(path, x_train=x, y_train=np.eye(10)[y], x_test=x, y_test=y)
    np.testing.assert_array_equal(load_dataset(DatasetSpec.parse(str(path))).y_train, y)


def bad_npz(tmp_path: Path, **overrides: np.ndarray) -> Path:
    x, y = synthetic_images(30, seed=6)
    arrays = {"x_train": x, "y_train": y, "x_test": x, "y_test": y, **overrides}
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # Any shape is an input now, but the test rows must have the training rows'.
        ({"x_test": np.zeros((30, 28, 27), np.uint8)}, r"x_test rows have shape \(28, 27\)"),
        # Pixels (the training images) are 0..255; test images past it are refused.
        ({"x_test": np.full((30, 784), 300.0)}, "the training images' grey levels are 0..255"),
        ({"y_train": np.full(30, 10)}, r"the same value \(10\) in every row"),
        ({"y_train": np.zeros(29, np.uint8)}, "30 training rows of inputs but 29 of labels"),
        ({"y_test": np.full(30, 0.5)}, r"test set holds class\(es\) '0.5' that no training row"),
    ],
)
def test_invalid_arrays_are_clear_errors(tmp_path: Path, overrides: dict, message: str) -> None:
    with pytest.raises(TunerError, match=message):
        load_dataset(DatasetSpec.parse(str(bad_npz(tmp_path, **overrides))))


def test_npz_missing_key_and_corrupt_file(tmp_path: Path) -> None:
    partial = tmp_path / "partial.npz"
    np.savez(partial, x_train=np.zeros((2, 784)))
    with pytest.raises(TunerError, match="missing array"):
        load_dataset(DatasetSpec.parse(str(partial)))
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(TunerError, match=r"not a readable \.npz"):
        load_dataset(DatasetSpec.parse(str(corrupt)))
    with pytest.raises(TunerError, match="not found"):
        load_dataset(DatasetSpec.parse(str(tmp_path / "absent.npz")))


def test_pickled_object_arrays_are_refused(tmp_path: Path) -> None:
    path = bad_npz(tmp_path, y_train=np.array([object()] * 30, dtype=object))
    with pytest.raises(TunerError, match="y_train holds Python objects"):
        load_dataset(DatasetSpec.parse(str(path)))


def test_truncated_and_foreign_idx_files(tmp_path: Path) -> None:
    write_idx_folder(tmp_path / "idx", gz=False)
    images = tmp_path / "idx" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-10])
    with pytest.raises(TunerError, match="truncated or corrupt"):
        read_idx(images)
    images.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(TunerError, match="bad magic"):
        load_dataset(DatasetSpec.parse(str(tmp_path / "idx")))
    (tmp_path / "idx" / "t10k-labels-idx1-ubyte").unlink()
    images.unlink()
    with pytest.raises(TunerError, match="missing train-images-idx3-ubyte"):
        load_dataset(DatasetSpec.parse(str(tmp_path / "idx")))


def test_subset_is_seeded_and_stratified(synthetic_npz: Path) -> None:
    full = load_dataset(DatasetSpec.parse(str(synthetic_npz)))
    first = load_dataset(DatasetSpec.parse(str(synthetic_npz), subset=100))
    again = load_dataset(DatasetSpec.parse(str(synthetic_npz), subset=100))
    assert len(first.y_train) == 100
    np.testing.assert_array_equal(first.x_train, again.x_train)
    assert first.fingerprint() == again.fingerprint() != full.fingerprint()
    full_share = np.bincount(full.y_train, minlength=10) / len(full.y_train)
    sub_share = np.bincount(first.y_train, minlength=10) / 100
    assert np.abs(full_share - sub_share).max() <= 0.011
    with pytest.raises(TunerError, match="larger than"):
        load_dataset(DatasetSpec.parse(str(synthetic_npz), subset=301))


def test_stratified_sample_hits_exact_size() -> None:
    labels = np.repeat(np.arange(10), [7, 3, 11, 5, 9, 2, 13, 4, 6, 8])
    for size in (1, 10, 17, 67):
        chosen = stratified_sample(labels, size, seed=0)
        assert len(chosen) == size == len(set(chosen.tolist()))


def test_named_datasets_stay_names_and_paths_become_absolute(tmp_path: Path) -> None:
    assert DatasetSpec.parse("fashion-mnist").source == "fashion-mnist"
    relative = DatasetSpec.parse("data.npz")
    assert Path(relative.source).is_absolute()
    assert DatasetSpec.from_dict(relative.to_dict()) == relative
    with pytest.raises(TunerError, match="--subset"):
        DatasetSpec.parse("mnist", subset=0)


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="dataset-fashion-mnist not installed")
def test_debian_fashion_mnist_loads_offline() -> None:
    dataset = load_dataset(DatasetSpec.parse("fashion-mnist"))
    assert dataset.x_train.shape == (60000, 784) and dataset.x_test.shape == (10000, 784)
    assert np.bincount(dataset.y_train).tolist() == [6000] * 10


def test_data_cache_loads_once_and_refuses_other_data(synthetic_npz: Path) -> None:
    from tuner.data import DataCache

    cache = DataCache()
    spec = DatasetSpec.parse(str(synthetic_npz))
    dataset, fingerprint = cache.load(spec)
    assert cache.load(spec)[0] is dataset
    assert cache.verified(spec, fingerprint, "s") is dataset
    with pytest.raises(TunerError, match=r"study 's'.*fingerprint mismatch"):
        cache.verified(spec, "0" * 32, "s")
