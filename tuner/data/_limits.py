"""The documented limits on what tuner reads: study definitions and dataset files.

Every limit is checked on what a file *declares* (its size, a header, a grid's product)
before anything that size is allocated, read or decompressed, so that a careless or
hostile file is refused in one line instead of ending in ``MemoryError`` hours later or
exhausting the machine. README's "Adding a variant" section lists them.
"""

from __future__ import annotations

MAX_DEFINITION_BYTES = 1 << 20
"""Size of one study definition file (1 MiB): a definition is a few hundred bytes."""

MAX_GRID_POINTS = 100_000
"""Points in one definition's grid (the product of its layers' unit counts). Every point is
an Optuna trial trained ``folds`` times; the seven seed variants hold 113 together."""

MIN_UNITS = 1
"""Fewest units in a hidden layer."""

MAX_UNITS = 65_536
"""Most units in a hidden layer: 784 x 65,536 float32 weights are 205 MB already."""

MAX_ARRAY_BYTES = 2 << 30
"""Bytes one array may declare in its file (2 GiB): an IDX file's body, or one array of a
``.npz``, checked on its header before the body is read or decompressed. Fashion-MNIST's
training images are 47 MB."""
