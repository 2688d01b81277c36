"""A study's results for Python callers: records, DataFrames, HTML and the grid figure.

Read from the storage only, so loading results needs neither a deep-learning framework
nor matplotlib; pandas and matplotlib are imported when a frame or a figure is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from rich.console import Console

from tuner.reporting._ranking import RankedPoint, ranked_points, ranking_html, render_ranking
from tuner.study import StudyConfig, StudyDefinition, load_studies, schema

if TYPE_CHECKING:
    import pandas as pd

    from tuner.reporting._plots import ReportFigure
    from tuner.reporting._report import Report


@dataclass(frozen=True)
class StudyResults:
    """One study's evaluated grid points, best first.

    In Jupyter it renders as the ranked grid. Every number is also available as plain
    records (:meth:`to_records`), as a DataFrame (:meth:`to_frame`) and, per epoch of
    every fold, as :meth:`history_frame`.

    Attributes:
        study: The Optuna study (for Optuna's own API and visualisations).
        config: What the study records: definition, dataset, epochs, fold seed.
        points: The COMPLETE grid points, ranked by mean CV accuracy.
    """

    study: optuna.Study
    config: StudyConfig
    points: list[RankedPoint]

    @classmethod
    def of(cls, study: optuna.Study, config: StudyConfig) -> StudyResults:
        """The results recorded on a loaded study."""
        return cls(study, config, ranked_points(study, config.definition))

    @property
    def name(self) -> str:
        """The study's name."""
        return self.config.study_name

    def __repr__(self) -> str:
        best = f", best {self.best.mean_accuracy:.4f}" if self.best else ""
        cv = f", {self.config.cv_label}" if self.config.repeats > 1 else ""
        return (
            f"StudyResults({self.name}: {len(self.points)}/{self.definition.grid_size}{best}{cv})"
        )

    @property
    def definition(self) -> StudyDefinition:
        """The variant the study searches."""
        return self.config.definition

    @property
    def complete(self) -> bool:
        """Whether every grid point has a result."""
        return len(self.points) == self.definition.grid_size

    @property
    def best(self) -> RankedPoint | None:
        """The best grid point so far (None before any is complete)."""
        return self.points[0] if self.points else None

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per grid point, best first.

        Keys: ``study``, ``rank``, ``trial``, one per layer (``l1`` ...) with its units,
        one per grid axis named by the axis (``batch_norm``, ``dropout``,
        ``learning_rate`` ...: the point's value) on a grid with axes, ``units``
        (``512-64``, the widths alone), ``cv_accuracy_mean``, ``cv_accuracy_std``,
        ``cv_accuracy_ci_low`` and ``cv_accuracy_ci_high`` (the 95% corrected interval),
        ``p_vs_best_holm`` and ``tied_with_best`` (see :mod:`tuner.stats`),
        ``cv_loss_mean``, ``cv_loss_std``, ``fold_K_accuracy`` and ``fold_K_loss`` for
        every fold K (with ``repeats`` R, K runs to R*k-1: fold K is fold K % k of
        repetition K // k), ``train_seconds`` and ``wall_seconds``.
        """
        layers = self.definition.layer_names
        return [point.to_record(self.name, layers) for point in self.points]

    def to_frame(self) -> pd.DataFrame:
        """:meth:`to_records` as a DataFrame, one row per grid point."""
        import pandas as pd

        return pd.DataFrame(self.to_records())

    def history_frame(self) -> pd.DataFrame:
        """Per-epoch curves of every fold of every grid point, one row per epoch.

        Columns: ``study``, ``trial``, ``units``, one per grid axis (named by the axis)
        on a grid with axes, ``fold``, ``epoch`` (from 1) and the recorded curves
        (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``).
        """
        import pandas as pd

        rows = []
        axes = list(self.definition.axes)
        for point in self.points:
            units = "-".join(map(str, point.units))
            for fold in point.folds:
                curves = {key: fold.history.get(key, []) for key in schema.HISTORY_KEYS}
                for epoch in range(len(curves["loss"])):
                    rows.append(
                        {
                            "study": self.name,
                            "trial": point.trial_number,
                            "units": units,
                            **point.axes,
                            "fold": fold.fold,
                            "epoch": epoch + 1,
                            **{key: values[epoch] for key, values in curves.items() if values},
                        }
                    )
        columns = ["study", "trial", "units", *axes, "fold", "epoch", *schema.HISTORY_KEYS]
        return pd.DataFrame(rows, columns=columns)

    def grid_chart(self) -> ReportFigure:
        """CV accuracy over the grid: a heatmap for two layers, a ranked strip for more; on
        a grid with axes, a heatmap of two of its dimensions, one panel per combination
        of the others (see :func:`tuner.reporting._plots.grid_chart`)."""
        from tuner.reporting import _plots

        return _plots.grid_chart(self.name, self.definition, self.points)

    def render(self, console: Console) -> None:
        """Print the ranked grid and the best point (what ``tuner launch`` ends with)."""
        render_ranking(console, self.name, self.definition, self.points)

    def _repr_html_(self) -> str:
        return ranking_html(self.name, self.definition, self.points)


class Results(Mapping[str, StudyResults]):
    """Several studies' results, by study name, e.g. what :func:`tuner.launch` ran.

    In Jupyter it renders as each study's ranked grid.

    Args:
        studies: Each study's results, by name.
        report: The report written with them, if one was (see :func:`tuner.launch`).
    """

    def __init__(self, studies: Mapping[str, StudyResults], report: Report | None = None) -> None:
        self._studies = dict(studies)
        self.report = report

    def __getitem__(self, name: str) -> StudyResults:
        return self._studies[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._studies)

    def __len__(self) -> int:
        return len(self._studies)

    def __repr__(self) -> str:
        summary = ", ".join(
            f"{name}: {len(result.points)}/{result.definition.grid_size}"
            for name, result in self._studies.items()
        )
        return f"Results({summary})"

    def to_records(self) -> list[dict[str, Any]]:
        """Every study's :meth:`StudyResults.to_records`, one after the other."""
        return [record for result in self._studies.values() for record in result.to_records()]

    def to_frame(self) -> pd.DataFrame:
        """:meth:`to_records` as one DataFrame; the ``study`` column tells studies apart."""
        import pandas as pd

        return pd.DataFrame(self.to_records())

    def history_frame(self) -> pd.DataFrame:
        """Every study's :meth:`StudyResults.history_frame`, concatenated."""
        import pandas as pd

        frames = [result.history_frame() for result in self._studies.values()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def render(self, console: Console) -> None:
        """Print every study's ranked grid."""
        for result in self._studies.values():
            result.render(console)

    def _repr_html_(self) -> str:
        return "".join(result._repr_html_() for result in self._studies.values())


def load_results(storage: optuna.storages.BaseStorage, names: list[str]) -> Results:
    """The named tuner studies' results (all of them when ``names`` is empty or ``all``).

    Raises:
        TunerError: A named study does not exist, or the storage holds no tuner study.
    """
    loaded = load_studies(storage, names)
    return Results({config.study_name: StudyResults.of(study, config) for study, config in loaded})
