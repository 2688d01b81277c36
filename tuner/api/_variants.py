"""Variants from Python: the definitions on offer, and new ones defined in code."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tuner.errors import TunerError
from tuner.reporting import VariantTable
from tuner.study import (
    SETTINGS,
    StudyDefinition,
    TrainingProtocol,
    load_definitions,
    parse_definition,
    select,
)

_PROTOCOL = TrainingProtocol()
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

VariantsArgument = str | StudyDefinition | Sequence[str | StudyDefinition]
"""One variant or several: names of definition files, or definitions made in code."""


def variants(studies_dir: str | Path | None = None) -> VariantTable:
    """Every study definition in a folder: what ``tuner variants`` lists.

    Args:
        studies_dir: Folder of ``*.toml`` definitions. Default: ``$TUNER_STUDIES``, else
            the project's ``studies/`` folder.

    Returns:
        The definitions by variant name; in Jupyter, a table of layers, regularisation,
        grid and size.

    Raises:
        TunerError: The folder does not exist, holds no definition, or a file is invalid
            (the message names the file, the key and the reason).
    """
    return VariantTable(load_definitions(Path(studies_dir) if studies_dir else None))


def define_variant(
    name: str,
    grid: Mapping[str, Sequence[Any]] | Sequence[Sequence[int]],
    *,
    description: str = "",
    batch_norm: bool = False,
    dropout: float = 0.0,
    epochs: int = _PROTOCOL.epochs,
    batch_size: int = _PROTOCOL.batch_size,
    folds: int = _PROTOCOL.folds,
    optimizer: str = _PROTOCOL.optimizer,
    learning_rate: float = _PROTOCOL.learning_rate,
    activation: str = SETTINGS["activation"].default,
    weight_decay: float | None = None,
) -> StudyDefinition:
    """A variant defined in code, checked exactly like a definition file.

    Example:
        ``tuner.define_variant("wide", {"l1": [512, 1024], "l2": [64]}, dropout=0.3)``;
        with grid axes, ``{"l1": [512, 1024], "dropout": [0.0, 0.5],
        "learning_rate": [0.001, 0.003]}``.

    Args:
        name: The variant's name, and the default name of its study.
        grid: Units per hidden layer, ``{"l1": [...], "l2": [...]}``, or one list per
            layer in order; the grid is their product. The mapping may also hold grid
            axes, as a definition's ``[grid]`` does: ``batch_norm``, ``dropout``,
            ``activation``, ``learning_rate``, ``epochs``, ``batch_size``, ``optimizer``,
            ``weight_decay``, each a list of values. A setting on the grid takes its
            values from there; giving it a non-default keyword too is refused.
        description: Free text.
        batch_norm: BatchNormalization after each hidden layer.
        dropout: Dropout rate after each hidden layer; 0 for none.
        epochs: Epochs per fold (``launch(epochs=...)`` may override it).
        batch_size: Mini-batch size.
        folds: Cross-validation folds (at least 2).
        optimizer: ``adam``, ``adamw``, ``nadam``, ``rmsprop`` or ``sgd``.
        learning_rate: The optimizer's learning rate.
        activation: The hidden layers' activation (a Keras name: ``relu``, ``gelu`` ...).
        weight_decay: The optimizer's decoupled weight decay; None keeps its own.

    Returns:
        The definition, ready for :func:`tuner.launch`.

    Raises:
        TunerError: A value is invalid; the message names the variant, the key and why.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise TunerError(
            f"variant name {name!r}: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    layers = grid if isinstance(grid, Mapping) else {f"l{i}": v for i, v in enumerate(grid, 1)}
    settings = {
        "batch_norm": batch_norm,
        "dropout": dropout,
        "activation": activation,
        "epochs": epochs,
        "batch_size": batch_size,
        "folds": folds,
        "optimizer": optimizer,
        "learning_rate": learning_rate,
        "weight_decay": weight_decay,
    }
    tables: dict[str, dict[str, Any]] = {"model": {}, "protocol": {}}
    for key, value in settings.items():
        # A setting on the grid takes its values there; a keyword left at its default
        # steps aside, one set as well is kept so that the check refuses the two places.
        on_grid = key in layers and value == SETTINGS[key].default
        if value is not None and not on_grid:
            tables[SETTINGS[key].table][key] = value
    document = {
        "description": description,
        "model": tables["model"],
        # The file format's lists; anything else is left for the check to name.
        "grid": {
            key: list(units) if isinstance(units, (list, tuple, range)) else units
            for key, units in layers.items()
        },
        "protocol": tables["protocol"],
    }
    # Errors then read "NAME: key 'grid.l1': ..."; the stem would cut a name at its dot.
    definition = parse_definition(Path(name), document)
    return dataclasses.replace(definition, name=name)


def resolve_variants(
    chosen: VariantsArgument, studies_dir: str | Path | None
) -> list[StudyDefinition]:
    """Definitions for names (``all`` included) and definitions, in order, each once.

    The definitions folder is read only when a name is given.

    Raises:
        TunerError: No variant, an unknown name, or two different variants of one name.
    """
    items = [chosen] if isinstance(chosen, (str, StudyDefinition)) else list(chosen)
    folder = Path(studies_dir) if studies_dir else None
    if not items:
        select(load_definitions(folder), [])  # raises, naming the known variants
    known = load_definitions(folder) if any(isinstance(i, str) for i in items) else {}
    resolved: dict[str, StudyDefinition] = {}
    for item in items:
        if isinstance(item, str):
            found = select(known, [item])
        elif isinstance(item, StudyDefinition):
            found = [item]
        else:
            raise TunerError(f"a variant is a name or a StudyDefinition, got {item!r}")
        for definition in found:
            if resolved.setdefault(definition.name, definition) != definition:
                raise TunerError(f"two different variants are named '{definition.name}'")
    return list(resolved.values())
