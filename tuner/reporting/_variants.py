"""The study definitions on offer, as one object: printed, shown in Jupyter, tabulated."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tuner.reporting import _html
from tuner.study import SETTINGS, StudyDefinition, shown_name, shown_value

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["variant", "layers", "regularisation", "units per layer", "axes", "points"]


def _grid(definition: StudyDefinition) -> str:
    return " x ".join("{" + ",".join(map(str, values)) + "}" for values in definition.grid.values())


def _axes(definition: StudyDefinition) -> str:
    """``batch_norm {true,false} x dropout {0.0,0.5}``, or ``-`` for widths only."""
    return (
        " x ".join(
            f"{name} {{{','.join(map(shown_value, values))}}}"
            for name, values in definition.axes.items()
        )
        or "-"
    )


def _protocol_value(definition: StudyDefinition, name: str) -> str:
    """A protocol setting as the protocol line shows it: its value, or its axis' values."""
    values = definition.values_of(name)
    shown = [f"{value:g}" if isinstance(value, float) else str(value) for value in values]
    return shown[0] if len(shown) == 1 else "{" + ",".join(shown) + "}"


class VariantTable(Mapping[str, StudyDefinition]):
    """Study definitions by variant name: what ``tuner variants`` lists.

    In Jupyter it renders as the table of variants and the training protocols they use.

    Args:
        definitions: The definitions, by variant name.
    """

    def __init__(self, definitions: Mapping[str, StudyDefinition]) -> None:
        self._definitions = dict(definitions)

    def __getitem__(self, name: str) -> StudyDefinition:
        return self._definitions[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._definitions)

    def __len__(self) -> int:
        return len(self._definitions)

    def __repr__(self) -> str:
        return f"VariantTable({', '.join(self._definitions)})"

    def _rows(self) -> list[list[str]]:
        return [
            [
                definition.name,
                str(definition.n_layers),
                definition.regularisation,
                _grid(definition),
                _axes(definition),
                str(definition.grid_size),
            ]
            for definition in self._definitions.values()
        ]

    def protocols(self) -> list[str]:
        """One line per distinct training protocol, naming the variants that use it; a
        setting that is a grid axis shows its values (``lr {0.0003,0.001}``)."""
        names = [n for n, s in SETTINGS.items() if s.table == "protocol"]

        def shown(d: StudyDefinition) -> dict[str, str]:
            return {name: _protocol_value(d, name) for name in names}

        described = {d.name: shown(d) for d in self._definitions.values()}
        protocols = list(dict.fromkeys(tuple(p.items()) for p in described.values()))
        lines = []
        for protocol in protocols:
            users = [name for name, p in described.items() if tuple(p.items()) == protocol]
            scope = "all variants" if len(protocols) == 1 else ", ".join(users)
            p = dict(protocol)
            decay = "" if p["weight_decay"] == "None" else f", weight decay {p['weight_decay']}"
            lines.append(
                f"protocol ({scope}): {p['epochs']} epochs, batch {p['batch_size']}, "
                f"{p['folds']}-fold CV, {p['optimizer']} lr {p['learning_rate']}{decay}"
            )
        return lines

    def to_records(self) -> list[dict[str, Any]]:
        """One plain dict per variant: its layers, regularisation, grid (widths), axes
        (every other grid axis by name, with its values; empty for widths only) and
        protocol; a setting that is a grid axis is None in its own key (see ``axes``)."""

        def fixed(d: StudyDefinition, name: str) -> Any:
            return None if name in d.axes else d.value_of(name)

        return [
            {
                "variant": d.name,
                "description": d.description,
                "hidden_layers": d.n_layers,
                "regularisation": d.regularisation,
                "batch_norm": fixed(d, "batch_norm"),
                "dropout": fixed(d, "dropout"),
                "grid": {name: list(values) for name, values in d.grid.items()},
                "axes": {name: list(values) for name, values in d.axes.items()},
                "grid_points": d.grid_size,
                "epochs": fixed(d, "epochs"),
                "batch_size": fixed(d, "batch_size"),
                "folds": d.protocol.folds,
                "optimizer": fixed(d, "optimizer"),
                "learning_rate": fixed(d, "learning_rate"),
            }
            for d in self._definitions.values()
        ]

    def to_frame(self) -> pd.DataFrame:
        """:meth:`to_records` as a DataFrame indexed by variant."""
        import pandas as pd

        return pd.DataFrame(self.to_records()).set_index("variant")

    def render(self, console: Console) -> None:
        """Print the table of variants, then the protocols."""
        table = Table(title="study definitions")
        for column in COLUMNS:
            wraps = column in ("units per layer", "axes")
            table.add_column(column, no_wrap=not wraps, overflow="fold" if wraps else "ellipsis")
        for name, *rest in self._rows():
            # File names and descriptions are the user's text: shown, never markup.
            table.add_row(Text(shown_name(name)), *(Text(cell) for cell in rest))
        console.print(table)
        for line in self.protocols():
            console.print(line, markup=False, highlight=False)

    def _repr_html_(self) -> str:
        notes = "".join(f"<p>{_html.escape(line)}</p>" for line in self.protocols())
        return _html.table(COLUMNS, self._rows(), caption="study definitions") + notes
