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

MAX_TABLE_BYTES = 2 << 30
"""Size of a table file (CSV, Parquet, Feather: 2 GiB), checked before it is read."""

MAX_CLASSES = 1000
"""Most classes a classification target may have (ImageNet's count); an integer target
with more distinct values is taken as a regression unless ``--task`` says otherwise."""

MAX_FEATURES = 65_536
"""Most model inputs (columns after one-hot encoding, or values per array row): as many
as the widest hidden layer, so layer 1's kernel stays within the same bound."""

MAX_CATEGORIES = 1000
"""Most distinct values of one text (categorical) column: more is an identifier or free
text, which one-hot encoding would turn into as many useless inputs."""
