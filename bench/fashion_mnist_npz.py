"""Fashion-MNIST as one Keras-style ``.npz``, from Debian's ``dataset-fashion-mnist`` package.

For a machine that has no dataset and no network (the lent GPU machine of issue 20): the
60,000 training and 10,000 test images (uint8, 28x28) and their labels, under the keys
tuner's ``load_npz`` reads (``x_train``, ``y_train``, ``x_test``, ``y_test``), compressed
(about 30 MB). The arrays are read with tuner's own IDX reader, so a study on the npz
has the same data fingerprint as one on ``--dataset fashion-mnist`` here, and the same
``--subset`` sample and folds. The npz is not committed (``.gitignore``); it travels to
the GPU machine as a carried path.

    apt-get install -y dataset-fashion-mnist
    python bench/fashion_mnist_npz.py              # writes .data/fashion-mnist.npz
    python bench/fashion_mnist_npz.py --out other.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tuner.data import DatasetSpec
from tuner.data._datasets import DEBIAN_FASHION_MNIST, NPZ_KEYS, load_dataset, load_idx_folder

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / ".data" / "fashion-mnist.npz"


def write_npz(source: Path, out: Path) -> None:
    """Write the IDX files under ``source`` to ``out`` and check tuner reads them back."""
    if not source.is_dir():
        raise SystemExit(
            f"{source} not found: apt-get install dataset-fashion-mnist, or give --source"
        )
    arrays = load_idx_folder(source)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **{key: arrays[key] for key in NPZ_KEYS})
    written = load_dataset(DatasetSpec.parse(str(out)))
    original = load_dataset(DatasetSpec.parse(str(source)))
    if written.fingerprint() != original.fingerprint():
        raise SystemExit(f"{out}: tuner reads other data back than {source}")
    shapes = ", ".join(f"{key} {arrays[key].shape}" for key in NPZ_KEYS)
    size = out.stat().st_size / 1e6
    print(f"{out}: {shapes}; {size:.1f} MB; fingerprint {written.fingerprint()}")


def main() -> None:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEBIAN_FASHION_MNIST)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    write_npz(args.source, args.out)


if __name__ == "__main__":
    main()
