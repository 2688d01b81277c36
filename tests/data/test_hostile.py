"""Dataset files as a careless or hostile user hands them over: every refusal is one
TunerError line naming the file, decided on what the file declares before anything that
size is allocated, read or decompressed."""

from __future__ import annotations

import gzip
import io
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.data.test_datasets import write_idx, write_idx_folder
from tests.helpers import synthetic_images
from tuner.data import MAX_ARRAY_BYTES, DatasetSpec, load_dataset, load_npz, read_idx
from tuner.errors import TunerError

MiB = 1 << 20


def refusal(load: Callable[[], object], peak_below: int = 16 * MiB) -> str:
    """The one-line TunerError ``load`` raises, after checking it allocated little."""
    tracemalloc.start()
    try:
        with pytest.raises(TunerError) as error:
            load()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < peak_below, f"{peak / MiB:.0f} MiB allocated before refusing"
    message = str(error.value)
    assert "\n" not in message
    return message


def idx_bytes(shape: tuple[int, ...], body: bytes = b"", dtype: int = 0x08) -> bytes:
    return bytes([0, 0, dtype, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + body


def test_idx_header_whose_size_overflows_is_one_line(tmp_path: Path) -> None:
    # 65536**4 is 2**64: in 64-bit arithmetic it wraps to 0, the size of the (empty) body.
    four = tmp_path / "four-idx"
    four.write_bytes(idx_bytes((65536,) * 4))
    assert "4 dimensions" in refusal(lambda: read_idx(four))
    three = tmp_path / "three-idx"
    three.write_bytes(idx_bytes((2**32 - 1,) * 3))
    message = refusal(lambda: read_idx(three))
    assert str(three) in message and f"at most {MAX_ARRAY_BYTES}" in message


def test_gzip_idx_declaring_too_much_is_refused_before_decompressing(tmp_path: Path) -> None:
    # The header promises 2.35 GB of images; 64 MiB of zeros compress to 64 KiB.
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes((3_000_000, 28, 28), bytes(64 * MiB))))
    assert path.stat().st_size < MiB
    message = refusal(lambda: read_idx(path))
    assert f"{path}: IDX header declares (3000000, 28, 28)" in message
    assert f"at most {MAX_ARRAY_BYTES} bytes" in message


def test_gzip_idx_body_is_read_only_as_far_as_the_header_promises(tmp_path: Path) -> None:
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes((100,), bytes(64 * MiB))))
    message = refusal(lambda: read_idx(path))
    assert "truncated or corrupt: header promises 100 bytes, file holds more" in message


def test_idx_that_is_no_mnist_shape_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "zero-idx"
    path.write_bytes(idx_bytes(()))
    assert "0 dimensions" in refusal(lambda: read_idx(path))
    corrupt = tmp_path / "corrupt-idx.gz"
    corrupt.write_bytes(gzip.compress(idx_bytes((10,), bytes(10)))[:-12] + b"garbage-tail")
    assert str(corrupt) in refusal(lambda: read_idx(corrupt))


def npz_with_header(path: Path, header: dict[str, object], body: bytes = b"") -> Path:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    with zipfile.ZipFile(path, "w") as archive:
        for key in ("x_train", "y_train", "x_test", "y_test"):
            archive.writestr(key + ".npy", buffer.getvalue() + body)
    return path


def test_npz_declaring_a_huge_shape_is_refused_before_allocating(tmp_path: Path) -> None:
    path = npz_with_header(
        tmp_path / "huge.npz", {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
    )
    message = refusal(lambda: load_npz(path))
    assert f"{path}: x_train declares shape (1000000, 1000000)" in message
    assert f"at most {MAX_ARRAY_BYTES}" in message
    # Within the limit but not in the file: refused as truncated, nothing 8 GB allocated.
    lying = npz_with_header(
        tmp_path / "lying.npz", {"descr": "<f8", "fortran_order": False, "shape": (2**27,)}
    )
    assert "x_train is truncated or corrupt" in refusal(lambda: load_npz(lying))


def test_npy_renamed_npz_and_other_files_are_one_line(tmp_path: Path) -> None:
    renamed = tmp_path / "renamed.npz"
    np.save(tmp_path / "a.npy", np.zeros(3))
    (tmp_path / "a.npy").rename(renamed)
    assert "a single .npy array, not an .npz archive" in refusal(lambda: load_npz(renamed))
    text = tmp_path / "text.npz"
    text.write_text("x_train,y_train\n1,2\n")
    assert "not a zip archive" in refusal(lambda: load_npz(text))
    pickled = tmp_path / "pickled.npz"
    x, y = synthetic_images(10, seed=1)
    np.savez(pickled, x_train=x, y_train=np.array([object()] * 10), x_test=x, y_test=y)
    assert "y_train holds Python objects" in refusal(lambda: load_npz(pickled))


def test_npz_arrays_round_trip_in_any_layout(tmp_path: Path) -> None:
    """The reader that replaced np.load keeps what it accepted before."""
    x, y = synthetic_images(40, seed=7)
    path = tmp_path / "mixed.npz"
    np.savez_compressed(
        path,
        x_train=np.asfortranarray(x),
        y_train=y.astype(">i8"),
        x_test=x.astype(np.float64),
        y_test=y.astype(np.uint8),
    )
    loaded = load_npz(path)
    np.testing.assert_array_equal(loaded["x_train"], x)
    np.testing.assert_array_equal(loaded["y_train"], y)
    np.testing.assert_array_equal(loaded["x_test"], x)
    dataset = load_dataset(DatasetSpec.parse(str(path)))
    np.testing.assert_allclose(dataset.x_train, x.reshape(40, 784) / 255.0, rtol=1e-6)


@pytest.mark.parametrize(
    ("name", "value"),
    [("x_train", np.nan), ("x_test", np.inf), ("x_train", -np.inf), ("y_train", np.nan)],
)
def test_non_finite_values_are_refused_naming_file_and_array(
    tmp_path: Path, name: str, value: float
) -> None:
    x, y = synthetic_images(30, seed=6)
    arrays = {"x_train": x, "y_train": y, "x_test": x, "y_test": y}
    arrays[name] = arrays[name].astype(np.float32)
    arrays[name][3, ...] = value
    path = tmp_path / "nan.npz"
    np.savez(path, **arrays)
    with pytest.raises(TunerError) as error:
        load_dataset(DatasetSpec.parse(str(path)))
    message = str(error.value)
    assert f"{path}: {name} holds NaN or infinite values in 1 row(s) (first: 3)" in message


def test_complex_images_are_refused(tmp_path: Path) -> None:
    x, y = synthetic_images(30, seed=6)
    path = tmp_path / "complex.npz"
    np.savez(path, x_train=x.astype(np.complex64), y_train=y, x_test=x, y_test=y)
    with pytest.raises(TunerError, match="x_train has dtype complex64"):
        load_dataset(DatasetSpec.parse(str(path)))


# --- Properties: random or damaged bytes load or are refused, never anything else.


def _loads_or_refuses(load: Callable[[], object], path: Path) -> None:
    try:
        load()
    except TunerError as error:
        assert str(path) in str(error)
        assert "\n" not in str(error)


def valid_npz_bytes() -> bytes:
    x, y = synthetic_images(12, seed=2)
    buffer = io.BytesIO()
    np.savez(buffer, x_train=x, y_train=y, x_test=x[:4], y_test=y[:4])
    return buffer.getvalue()


def valid_idx_bytes(gz: bool) -> bytes:
    x, _ = synthetic_images(3, seed=2)
    payload = idx_bytes(x.shape, x.astype(np.uint8).tobytes())
    return gzip.compress(payload, mtime=0) if gz else payload


@st.composite
def damaged(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` truncated, or with a few bytes overwritten, or random bytes after all."""
    how = draw(st.sampled_from(["truncate", "overwrite", "random"]))
    if how == "truncate":
        return original[: draw(st.integers(0, len(original)))]
    if how == "random":
        return draw(st.binary(max_size=400))
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


HYPOTHESIS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@HYPOTHESIS
@given(damaged(valid_npz_bytes()))
def test_any_npz_bytes_load_or_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fuzz.npz"
    path.write_bytes(content)
    _loads_or_refuses(lambda: load_dataset(DatasetSpec.parse(str(path))), path)


@HYPOTHESIS
@given(st.booleans().flatmap(lambda gz: st.tuples(st.just(gz), damaged(valid_idx_bytes(gz)))))
def test_any_idx_bytes_load_or_are_refused(tmp_path: Path, case: tuple[bool, bytes]) -> None:
    gz, content = case
    path = tmp_path / ("fuzz-idx3-ubyte.gz" if gz else "fuzz-idx3-ubyte")
    path.write_bytes(content)
    _loads_or_refuses(lambda: read_idx(path), path)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.sampled_from(["x_train", "y_train", "x_test", "y_test"]), st.binary(max_size=64))
def test_an_idx_folder_with_one_damaged_file_loads_or_is_refused(
    tmp_path_factory: pytest.TempPathFactory, key: str, tail: bytes
) -> None:
    folder = tmp_path_factory.mktemp("idx") / "idx"
    arrays = write_idx_folder(folder, gz=False)
    names = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte"}
    names |= {"x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
    write_idx(folder / names[key], arrays[key], gz=False)
    damaged_file = folder / names[key]
    damaged_file.write_bytes(damaged_file.read_bytes()[: 4 + len(tail)] + tail)
    _loads_or_refuses(lambda: load_dataset(DatasetSpec.parse(str(folder))), folder)
