"""Study definitions: one TOML file per variant under ``studies/``, loaded into dataclasses.

A definition is data, never code: it says which unit grid each hidden layer searches,
whether BatchNorm and Dropout follow each hidden layer, and the training protocol.
Every value is validated on load so that a typo fails at once with the file, the key
and the reason, instead of hours later inside a worker.

Every training setting is declared once, in :data:`SETTINGS`, with its table, type,
default and constraint; the ``[model]`` and ``[protocol]`` tables and the grid axes are
all checked against that one declaration. ``[grid]`` holds the hidden-layer widths
(``l1`` ... ``lN``) and, optionally, any setting marked as an axis (``learning_rate``,
``dropout``, ``batch_norm``, ``activation``, ``batch_size``, ``optimizer``, ``epochs``,
``weight_decay``); a setting not on the grid keeps its one value. A definition without
axes serialises exactly as before axes existed, so stored studies keep their fingerprint.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import math
import os
import re
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tuner.data import MAX_DEFINITION_BYTES, MAX_GRID_POINTS, MAX_UNITS, MIN_UNITS, Task
from tuner.errors import TunerError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw", "nadam")
ACTIVATIONS = ("relu", "elu", "gelu", "selu", "sigmoid", "silu", "tanh")
"""Hidden-layer activations a definition may name (Keras' names)."""
LAYER_KEY = re.compile(r"^l([1-9][0-9]*)$")
# The seed variants ship inside the package (package data), so an installed wheel has them.
BUILTIN_STUDIES_DIR = Path(str(importlib.resources.files("tuner") / "studies"))


@dataclass(frozen=True)
class TrainingProtocol:
    """How a grid point is trained: the study's protocol, with any axis' value fixed at
    the point's (:meth:`StudyDefinition.at`). Defaults are ``SETTINGS``' (a test holds
    them equal)."""

    epochs: int = 20
    batch_size: int = 120
    folds: int = 3
    optimizer: str = "adam"
    learning_rate: float = 0.001
    weight_decay: float | None = None
    """Decoupled weight decay, as Keras' optimizers take it; None keeps the optimizer's own."""


@dataclass(frozen=True)
class Setting:
    """One training setting: where it lives, its type, default and constraint.

    The one declaration of the setting: the ``[model]``/``[protocol]`` parser, the grid
    axis parser, the README's reference and the trainers' packing rule all read it.
    """

    table: str
    """``model`` or ``protocol``: the table that holds its single value."""
    kind: type
    default: Any
    check: Callable[[Any], str | None]
    """Returns why a value is refused, or None when it is accepted."""
    axis: bool = True
    """May be a ``[grid]`` axis."""
    packed: bool = False
    """Points differing only in this setting train in one packed model (it becomes
    per-point data); other axes split a grid into separately packed groups."""
    example: str = ""


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be positive"


def _non_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be zero or positive"


def _rate(value: Any) -> str | None:
    return None if 0.0 <= value < 1.0 else f"must be in [0, 1), got {value}"


def _folds(value: Any) -> str | None:
    return None if value >= 2 else "cross-validation needs at least 2 folds"


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def _anything(value: Any) -> str | None:
    return None


SETTINGS: dict[str, Setting] = {
    "batch_norm": Setting("model", bool, False, _anything, packed=True, example="[true, false]"),
    "dropout": Setting("model", float, 0.0, _rate, packed=True, example="[0.0, 0.5]"),
    "activation": Setting(
        "model", str, "relu", _one_of(ACTIVATIONS), packed=True, example='["relu", "gelu"]'
    ),
    "learning_rate": Setting(
        "protocol", float, 0.001, _positive, packed=True, example="[0.0003, 0.001, 0.003]"
    ),
    "epochs": Setting("protocol", int, 20, _positive, example="[10, 20]"),
    "batch_size": Setting("protocol", int, 120, _positive, example="[60, 120]"),
    "optimizer": Setting("protocol", str, "adam", _one_of(OPTIMIZERS), example='["adam", "sgd"]'),
    "weight_decay": Setting("protocol", float, None, _non_negative, example="[0.0, 0.004]"),
    "folds": Setting("protocol", int, 3, _folds, axis=False),
}
"""Every training setting, declared once (see :class:`Setting`)."""

AXES = tuple(name for name, setting in SETTINGS.items() if setting.axis)
"""The settings a ``[grid]`` may vary, besides the widths, in their canonical order."""
PACKED_AXES = frozenset(name for name, setting in SETTINGS.items() if setting.packed)
"""Axes whose values become per-point data in one packed model."""


@dataclass(frozen=True)
class StudyDefinition:
    """One variant of the MLP study: its architecture switches, unit grid and protocol."""

    name: str
    description: str
    grid: dict[str, tuple[int, ...]]
    batch_norm: bool
    dropout: float
    protocol: TrainingProtocol = field(default_factory=TrainingProtocol)
    activation: str = "relu"
    axes: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    """Grid axes besides the widths (``learning_rate = [...]``...), in :data:`AXES` order."""
    in_all: bool = True
    """Part of ``--variant all`` (the seed study); an extra study sets ``in_all = false``."""
    task: Task = field(default_factory=Task)
    """The data's task (input width, output layer, loss): the seed's MNIST digits until
    :meth:`for_task` sets the study's own. Derived from the data and recorded with it, so
    it is no part of the definition's record or fingerprint."""

    def for_task(self, task: Task) -> StudyDefinition:
        """This definition's models shaped for ``task``: its inputs, outputs and loss."""
        return self if task == self.task else replace(self, task=task)

    @property
    def n_layers(self) -> int:
        return len(self.grid)

    @property
    def layer_names(self) -> list[str]:
        return [f"l{i}" for i in range(1, self.n_layers + 1)]

    @property
    def grid_size(self) -> int:
        size = 1
        for values in (*self.grid.values(), *self.axes.values()):
            size *= len(values)
        return size

    def value_of(self, name: str) -> Any:
        """The fixed (not gridded) value of a setting."""
        table = self if SETTINGS[name].table == "model" else self.protocol
        return getattr(table, name)

    def values_of(self, name: str) -> tuple[Any, ...]:
        """Every value a setting takes in this study: its axis, or its one value."""
        return self.axes.get(name, (self.value_of(name),))

    def at(self, params: dict[str, Any]) -> StudyDefinition:
        """This definition with every axis fixed at a trial's values: one grid point's
        model and protocol, as a definition without axes.

        Raises:
            TunerError: ``params`` (read from storage: untrusted) lacks an axis.
        """
        if not self.axes:
            return self
        missing = [name for name in self.axes if name not in params]
        if missing:
            raise TunerError(
                f"study '{self.name}': a trial's parameters lack the grid axis "
                f"{', '.join(missing)}; not a point of this grid"
            )
        model = {n: params[n] for n in self.axes if SETTINGS[n].table == "model"}
        protocol = {n: params[n] for n in self.axes if SETTINGS[n].table == "protocol"}
        return replace(self, axes={}, protocol=replace(self.protocol, **protocol), **model)

    def epochs_at(self, params: dict[str, Any], study_epochs: int) -> int:
        """Epochs a grid point trains: its own on a grid with an ``epochs`` axis, else
        ``study_epochs`` (``--epochs`` or the protocol's, as recorded on the study)."""
        if "epochs" in self.axes:
            epochs: int = self.at(params).protocol.epochs
            return epochs
        return study_epochs

    def step_group(self, params: dict[str, Any]) -> tuple[Any, ...]:
        """What must be equal for two points to train in one packed model: the values of
        the axes that change a training step's structure (batch size, optimizer, epochs...)."""
        return tuple(params[name] for name in self.axes if name not in PACKED_AXES)

    def point_label(self, params: dict[str, Any]) -> str:
        """``l1=512 l2=64`` (then ``learning_rate=0.001 ...`` for other axes): a grid
        point as every message names it."""
        names = [*self.layer_names, *self.axes]
        return " ".join(f"{name}={shown_value(params[name])}" for name in names)

    def axis_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """A trial's values of the non-width axes, in axis order."""
        return {name: params[name] for name in self.axes}

    @property
    def regularisation(self) -> str:
        """The label the original study's comparison table used ("varies" for an axis)."""
        if "batch_norm" in self.axes or "dropout" in self.axes:
            return "varies (grid axis)"
        if self.batch_norm and self.dropout > 0:
            return "BatchNorm + Dropout"
        if self.batch_norm:
            return "BatchNorm only"
        if self.dropout > 0:
            return "Dropout only"
        return "none"

    def units_of(self, params: dict[str, Any]) -> tuple[int, ...]:
        """The hidden-layer widths of a trial's params, in layer order."""
        return tuple(int(params[name]) for name in self.layer_names)

    def to_dict(self) -> dict[str, Any]:
        """The record stored on a study. Settings added after the first release are left
        out at their defaults, so an older study's record (and fingerprint) is unchanged."""
        data = asdict(self)
        del data["task"]
        data["grid"] = {name: list(values) for name, values in self.grid.items()}
        if self.axes:
            data["axes"] = {name: list(values) for name, values in self.axes.items()}
        else:
            del data["axes"]
        if self.activation == SETTINGS["activation"].default:
            del data["activation"]
        if self.in_all:
            del data["in_all"]
        if self.protocol.weight_decay is None:
            del data["protocol"]["weight_decay"]
        return data

    def fingerprint(self) -> str:
        """A hash of everything that changes results, so a changed file is noticed."""
        payload = self.to_dict()
        payload.pop("description")
        payload.pop("name")
        payload.pop("in_all", None)  # which selection lists it changes no result
        text = json.dumps(payload, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: Any, where: str = "stored definition") -> StudyDefinition:
        """Rebuild a definition recorded on a study, checked like a definition file.

        Storage is shared and untrusted: a damaged or forged record is refused in one
        line (``where`` names it) rather than trained or crashed on.
        """
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise TunerError(f"{where}: not a tuner definition record")
        grid, axes = data.get("grid", {}), data.get("axes", {})
        if not isinstance(grid, dict) or not isinstance(axes, dict):
            raise TunerError(f"{where}: not a tuner definition record")
        model_keys = [name for name, s in SETTINGS.items() if s.table == "model"]
        protocol = data.get("protocol", {})
        if not isinstance(protocol, dict):
            raise TunerError(f"{where}: not a tuner definition record")
        # The record holds every setting's value; an axis' value lives on the grid only.
        document = {
            "description": data.get("description", ""),
            "in_all": data.get("in_all", True),
            "model": {key: data[key] for key in model_keys if key in data and key not in axes},
            "grid": {**grid, **axes},
            "protocol": {key: value for key, value in protocol.items() if key not in axes},
        }
        parsed = parse_definition(Path(where), document)
        return replace(parsed, name=data["name"])


def shown_value(value: Any) -> str:
    """A parameter value as a definition file writes it (``true``, not ``True``)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


class _Validator:
    """Collects the file name so that every error message can name it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, reason: str) -> TunerError:
        # A key is the file's text: a newline or an escape sequence in it must not reach
        # the terminal raw, nor break the message's one line.
        shown = key if key.isprintable() else key.encode("unicode_escape").decode("ascii")
        return TunerError(f"{self.path}: key '{shown}': {reason}")

    def table(self, data: dict[str, Any], key: str, allowed: set[str]) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table ([{key}]), got {type(value).__name__}")
        for unknown in sorted(set(value) - allowed):
            raise self.fail(
                f"{key}.{unknown}", f"unknown key; allowed: {', '.join(sorted(allowed))}"
            )
        return value

    def typed(self, data: dict[str, Any], key: str, kind: type, default: Any, where: str) -> Any:
        value = data.get(key, default)
        # bool is a subclass of int, and "true" must not pass as an epoch count.
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.fail(f"{where}{key}", f"must be an integer, got {value!r}")
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.fail(f"{where}{key}", f"must be a number, got {value!r}")
            value = float(value)
            if not math.isfinite(value):
                raise self.fail(f"{where}{key}", f"must be a finite number, got {value}")
        if kind in (bool, str) and not isinstance(value, kind):
            raise self.fail(f"{where}{key}", f"must be a {kind.__name__}, got {value!r}")
        return value

    def setting(self, name: str, value: Any, where: str) -> Any:
        """One value of a declared setting, typed and constrained as :data:`SETTINGS` says."""
        declared = SETTINGS[name]
        value = self.typed({name: value}, name, declared.kind, None, where)
        reason = declared.check(value)
        if reason:
            raise self.fail(f"{where}{name}", reason)
        return value


def _parse_axes(check: _Validator, raw: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """The non-width axes of a ``[grid]``, each value checked as its setting declares."""
    axes: dict[str, tuple[Any, ...]] = {}
    for name in AXES:
        if name not in raw:
            continue
        values = raw[name]
        if not isinstance(values, list) or not values:
            raise check.fail(f"grid.{name}", "must be a non-empty list of values")
        checked = [check.setting(name, value, "grid.") for value in values]
        if len(set(checked)) != len(checked):
            raise check.fail(f"grid.{name}", "duplicate values")
        axes[name] = tuple(checked)
    return axes


def _parse_grid(check: _Validator, raw: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    raw = {key: value for key, value in raw.items() if key not in AXES}
    if not raw:
        raise check.fail("grid", "empty grid; give l1 = [units, ...] for each hidden layer")
    indices = []
    for key in raw:
        match = LAYER_KEY.fullmatch(key)
        if not match:
            raise check.fail(
                f"grid.{key}",
                f"hidden layers must be named l1, l2, ... lN; other axes: {', '.join(AXES)}",
            )
        indices.append(int(match.group(1)))
    if sorted(indices) != list(range(1, len(indices) + 1)):
        raise check.fail("grid", f"layers must be l1..l{len(indices)} without gaps")
    grid: dict[str, tuple[int, ...]] = {}
    for index in sorted(indices):
        key = f"l{index}"
        values = raw[key]
        if not isinstance(values, list) or not values:
            raise check.fail(f"grid.{key}", "must be a non-empty list of unit counts")
        for units in values:
            if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
                raise check.fail(f"grid.{key}", f"units must be positive integers, got {units!r}")
            if not MIN_UNITS <= units <= MAX_UNITS:
                raise check.fail(
                    f"grid.{key}",
                    f"units must be {MIN_UNITS}..{MAX_UNITS} (MAX_UNITS), got {units}",
                )
        if len(set(values)) != len(values):
            raise check.fail(f"grid.{key}", "duplicate unit counts")
        grid[key] = tuple(values)
    return grid


def _check_grid_size(check: _Validator, sizes: list[int]) -> None:
    points = math.prod(sizes)
    if points > MAX_GRID_POINTS:
        raise check.fail(
            "grid",
            f"{points} points; at most {MAX_GRID_POINTS} (MAX_GRID_POINTS): split the study or "
            "search fewer values",
        )


def parse_definition(path: Path, data: dict[str, Any]) -> StudyDefinition:
    """Validate a parsed TOML document into a definition named after its file."""
    check = _Validator(path)
    for unknown in sorted(set(data) - {"description", "in_all", "model", "grid", "protocol"}):
        raise check.fail(
            unknown, "unknown key; allowed: description, in_all, model, grid, protocol"
        )
    description = check.typed(data, "description", str, "", "")
    in_all = check.typed(data, "in_all", bool, True, "")
    fixed: dict[str, Any] = {}
    for table in ("model", "protocol"):
        declared = [n for n, s in SETTINGS.items() if s.table == table]
        raw = check.table(data, table, set(declared))
        for name in declared:
            value = raw.get(name, SETTINGS[name].default)
            fixed[name] = None if value is None else check.setting(name, value, f"{table}.")
    raw_grid = check.table(
        data, "grid", set(data["grid"]) if isinstance(data.get("grid"), dict) else set()
    )
    grid = _parse_grid(check, raw_grid)
    axes = _parse_axes(check, raw_grid)
    for name in axes:
        table = SETTINGS[name].table
        if name in data.get(table, {}):
            raise check.fail(
                f"grid.{name}", f"also set in [{table}]; give it in one place: [grid] or [{table}]"
            )
    _check_grid_size(check, [len(v) for v in (*grid.values(), *axes.values())])
    protocol = TrainingProtocol(
        **{n: fixed[n] for n, s in SETTINGS.items() if s.table == "protocol"}
    )
    return StudyDefinition(
        name=path.stem,
        description=description,
        grid=grid,
        batch_norm=fixed["batch_norm"],
        dropout=fixed["dropout"],
        protocol=protocol,
        activation=fixed["activation"],
        axes=axes,
        in_all=in_all,
    )


def load_definition(path: Path) -> StudyDefinition:
    """Read, parse and validate one definition file; every refusal is one TunerError line
    naming the file (and the key, for a value out of bounds)."""
    if path.exists() and not path.is_file():
        raise TunerError(
            f"{path}: not a regular file (a folder, FIFO or device); give a .toml file"
        )
    try:
        with path.open("rb") as handle:
            content = handle.read(MAX_DEFINITION_BYTES + 1)
    except OSError as exc:
        raise TunerError(f"{path}: cannot read: {exc.strerror or type(exc).__name__}") from None
    if len(content) > MAX_DEFINITION_BYTES:
        raise TunerError(
            f"{path}: a study definition holds at most {MAX_DEFINITION_BYTES} bytes "
            "(MAX_DEFINITION_BYTES); is this the right file?"
        )
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TunerError(
            f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TunerError(f"{path}: not valid TOML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise TunerError(f"{path}: not valid TOML for a definition: nested too deeply") from None
    return parse_definition(path, data)


def default_studies_dir() -> Path:
    """``$TUNER_STUDIES``, else the built-in definitions shipped with tuner."""
    return Path(os.environ.get("TUNER_STUDIES") or BUILTIN_STUDIES_DIR)


def load_definitions(directory: Path | None = None) -> dict[str, StudyDefinition]:
    """Every ``*.toml`` in the directory, keyed by variant name (the file's stem)."""
    directory = directory or default_studies_dir()
    if not directory.is_dir():
        raise TunerError(f"studies directory {directory} does not exist; pass --studies DIR")
    paths = sorted(directory.glob("*.toml"), key=lambda path: path.stem)
    definitions = {path.stem: load_definition(path) for path in paths}
    if not definitions:
        raise TunerError(f"no study definitions (*.toml) in {directory}")
    return definitions


def select(definitions: dict[str, StudyDefinition], names: list[str]) -> list[StudyDefinition]:
    """Resolve ``--variant`` values; ``all`` means every definition not marked
    ``in_all = false`` (the seed study's variants, without extra studies)."""
    if not names:
        raise TunerError(f"give --variant NAME (or 'all'); known: {', '.join(definitions)}")
    if "all" in names:
        return [definition for definition in definitions.values() if definition.in_all]
    chosen = []
    for name in names:
        if name not in definitions:
            known = ", ".join(definitions)
            raise TunerError(
                f"unknown variant '{name}'; known variants: {known} (a definition of your "
                "own: put NAME.toml in a folder and pass --studies FOLDER, or set $TUNER_STUDIES)"
            )
        if definitions[name] not in chosen:
            chosen.append(definitions[name])
    return chosen
