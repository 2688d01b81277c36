"""Study definitions: one TOML file per variant under ``studies/``, loaded into dataclasses.

A definition is data, never code: it says which unit grid each hidden layer searches,
whether BatchNorm and Dropout follow each hidden layer, and the training protocol.
Every value is validated on load so that a typo fails at once with the file, the key
and the reason, instead of hours later inside a worker.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import math
import os
import re
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tuner.data import MAX_DEFINITION_BYTES, MAX_GRID_POINTS, MAX_UNITS, MIN_UNITS
from tuner.errors import TunerError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw", "nadam")
LAYER_KEY = re.compile(r"^l([1-9][0-9]*)$")
# The seed variants ship inside the package (package data), so an installed wheel has them.
BUILTIN_STUDIES_DIR = Path(str(importlib.resources.files("tuner") / "studies"))


@dataclass(frozen=True)
class TrainingProtocol:
    """How every grid point is trained; identical across the points of a study."""

    epochs: int = 20
    batch_size: int = 120
    folds: int = 3
    optimizer: str = "adam"
    learning_rate: float = 0.001


@dataclass(frozen=True)
class StudyDefinition:
    """One variant of the MLP study: its architecture switches, unit grid and protocol."""

    name: str
    description: str
    grid: dict[str, tuple[int, ...]]
    batch_norm: bool
    dropout: float
    protocol: TrainingProtocol = field(default_factory=TrainingProtocol)

    @property
    def n_layers(self) -> int:
        return len(self.grid)

    @property
    def layer_names(self) -> list[str]:
        return [f"l{i}" for i in range(1, self.n_layers + 1)]

    @property
    def grid_size(self) -> int:
        size = 1
        for values in self.grid.values():
            size *= len(values)
        return size

    @property
    def regularisation(self) -> str:
        """The label the original study's comparison table used."""
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
        data = asdict(self)
        data["grid"] = {name: list(values) for name, values in self.grid.items()}
        return data

    def fingerprint(self) -> str:
        """A hash of everything that changes results, so a changed file is noticed."""
        payload = self.to_dict()
        payload.pop("description")
        payload.pop("name")
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
        document = {
            "description": data.get("description", ""),
            "model": {key: data[key] for key in ("batch_norm", "dropout") if key in data},
            "grid": data.get("grid", {}),
            "protocol": data.get("protocol", {}),
        }
        parsed = parse_definition(Path(where), document)
        return replace(parsed, name=data["name"])


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


def _parse_grid(check: _Validator, raw: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    if not raw:
        raise check.fail("grid", "empty grid; give l1 = [units, ...] for each hidden layer")
    indices = []
    for key in raw:
        match = LAYER_KEY.fullmatch(key)
        if not match:
            raise check.fail(f"grid.{key}", "hidden layers must be named l1, l2, ... lN")
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
    points = math.prod(len(values) for values in grid.values())
    if points > MAX_GRID_POINTS:
        raise check.fail(
            "grid",
            f"{points} points; at most {MAX_GRID_POINTS} (MAX_GRID_POINTS): split the study or "
            "search fewer unit counts",
        )
    return grid


def parse_definition(path: Path, data: dict[str, Any]) -> StudyDefinition:
    """Validate a parsed TOML document into a definition named after its file."""
    check = _Validator(path)
    for unknown in sorted(set(data) - {"description", "model", "grid", "protocol"}):
        raise check.fail(unknown, "unknown key; allowed: description, model, grid, protocol")
    description = check.typed(data, "description", str, "", "")
    model = check.table(data, "model", {"batch_norm", "dropout"})
    batch_norm = check.typed(model, "batch_norm", bool, False, "model.")
    dropout = check.typed(model, "dropout", float, 0.0, "model.")
    if not 0.0 <= dropout < 1.0:
        raise check.fail("model.dropout", f"must be in [0, 1), got {dropout}")
    raw_grid = data.get("grid", {})
    grid = _parse_grid(
        check, check.table(data, "grid", set(raw_grid) if isinstance(raw_grid, dict) else set())
    )

    raw = check.table(data, "protocol", set(TrainingProtocol.__dataclass_fields__))
    defaults = TrainingProtocol()
    protocol = TrainingProtocol(
        epochs=check.typed(raw, "epochs", int, defaults.epochs, "protocol."),
        batch_size=check.typed(raw, "batch_size", int, defaults.batch_size, "protocol."),
        folds=check.typed(raw, "folds", int, defaults.folds, "protocol."),
        optimizer=check.typed(raw, "optimizer", str, defaults.optimizer, "protocol."),
        learning_rate=check.typed(raw, "learning_rate", float, defaults.learning_rate, "protocol."),
    )
    for key in ("epochs", "batch_size"):
        if getattr(protocol, key) <= 0:
            raise check.fail(f"protocol.{key}", "must be positive")
    if protocol.folds < 2:
        raise check.fail("protocol.folds", "cross-validation needs at least 2 folds")
    if protocol.learning_rate <= 0:
        raise check.fail("protocol.learning_rate", "must be positive")
    if protocol.optimizer not in OPTIMIZERS:
        raise check.fail("protocol.optimizer", f"must be one of {', '.join(OPTIMIZERS)}")
    return StudyDefinition(
        name=path.stem,
        description=description,
        grid=grid,
        batch_norm=batch_norm,
        dropout=dropout,
        protocol=protocol,
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
    """Resolve ``--variant`` values; ``all`` means every definition."""
    if not names:
        raise TunerError(f"give --variant NAME (or 'all'); known: {', '.join(definitions)}")
    if "all" in names:
        return list(definitions.values())
    chosen = []
    for name in names:
        if name not in definitions:
            known = ", ".join(definitions)
            raise TunerError(f"unknown variant '{name}'; known variants: {known}")
        if definitions[name] not in chosen:
            chosen.append(definitions[name])
    return chosen
