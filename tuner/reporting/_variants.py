"""The study definitions on offer, as one object: printed, shown in Jupyter, tabulated."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tuner.reporting import _html
from tuner.study import StudyDefinition, shown_name

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["variant", "layers", "regularisation", "units per layer", "points"]


def _grid(definition: StudyDefinition) -> str:
    return " x ".join("{" + ",".join(map(str, values)) + "}" for values in definition.grid.values())


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
                str(definition.grid_size),
            ]
            for definition in self._definitions.values()
        ]

    def protocols(self) -> list[str]:
        """One line per distinct training protocol, naming the variants that use it."""
        protocols = list(dict.fromkeys(d.protocol for d in self._definitions.values()))
        lines = []
        for p in protocols:
            users = [d.name for d in self._definitions.values() if d.protocol == p]
            scope = "all variants" if len(protocols) == 1 else ", ".join(users)
            lines.append(
                f"protocol ({scope}): {p.epochs} epochs, batch {p.batch_size}, "
                f"{p.folds}-fold CV, {p.optimizer} lr {p.learning_rate:g}"
            )
        return lines

    def to_records(self) -> list[dict[str, Any]]:
        """One plain dict per variant: its layers, regularisation, grid and protocol."""
        return [
            {
                "variant": d.name,
                "description": d.description,
                "hidden_layers": d.n_layers,
                "regularisation": d.regularisation,
                "batch_norm": d.batch_norm,
                "dropout": d.dropout,
                "grid": {name: list(values) for name, values in d.grid.items()},
                "grid_points": d.grid_size,
                "epochs": d.protocol.epochs,
                "batch_size": d.protocol.batch_size,
                "folds": d.protocol.folds,
                "optimizer": d.protocol.optimizer,
                "learning_rate": d.protocol.learning_rate,
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
            table.add_column(column, no_wrap=column != "units per layer")
        for name, *rest in self._rows():
            # File names and descriptions are the user's text: shown, never markup.
            table.add_row(Text(shown_name(name)), *(Text(cell) for cell in rest))
        console.print(table)
        for line in self.protocols():
            console.print(line, markup=False, highlight=False)

    def _repr_html_(self) -> str:
        notes = "".join(f"<p>{_html.escape(line)}</p>" for line in self.protocols())
        return _html.table(COLUMNS, self._rows(), caption="study definitions") + notes
