"""The grid sampler of a tuner study, and the one place a grid id becomes parameters.

The scheduler, not the sampler, decides which grid point a trial evaluates (bare
GridSampler hands one point to two workers at the tail of a grid: docs/claims.md), so
the sampler's only job is Optuna's own mapping from ``grid_id`` to parameter values.
Every process must build it with the same seed, or a grid id would mean different
units on different machines.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from tuner.study import schema
from tuner.study._definition import StudyDefinition

GRID_SEED = 0
"""GridSampler shuffles the grid with this seed; changing it re-maps every stored grid id."""


class ScheduledGridSampler(optuna.samplers.GridSampler):
    """GridSampler whose grid points are chosen by tuner's scheduler.

    Trials arrive with their ``grid_id`` already set, so the sampler only maps it to
    parameters. Its ``after_trial`` would call ``study.stop()``, which only works inside
    ``optimize``; the scheduler decides itself when the grid is done.
    """

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        return None


def grid_sampler(definition: StudyDefinition) -> ScheduledGridSampler:
    """The sampler every process attaches to a study of this definition."""
    return ScheduledGridSampler(search_space(definition), seed=GRID_SEED)


def search_space(definition: StudyDefinition) -> dict[str, list[Any]]:
    """The grid as GridSampler takes it and records it on each trial: the widths, then
    any other axes (a study without axes has exactly the space it always had)."""
    space: dict[str, list[Any]] = {name: list(values) for name, values in definition.grid.items()}
    space.update((name, list(values)) for name, values in definition.axes.items())
    return space


class _GridIdOnly:
    """What ``GridSampler.sample_independent`` reads of a trial: its ``grid_id``."""

    def __init__(self, grid_id: int) -> None:
        self.system_attrs = {schema.GRID_ID: grid_id}


def grid_params(definition: StudyDefinition) -> list[dict[str, Any]]:
    """Every grid id's parameters, indexed by grid id: what a trial of that id gets."""
    sampler = grid_sampler(definition)
    space = search_space(definition)
    return [
        {
            name: sampler.sample_independent(
                None,  # type: ignore[arg-type]  # GridSampler reads only the trial
                _GridIdOnly(grid_id),  # type: ignore[arg-type]
                name,
                CategoricalDistribution(values),
            )
            for name, values in space.items()
        }
        for grid_id in range(definition.grid_size)
    ]


def running_trial_template(
    study: optuna.Study, definition: StudyDefinition, grid_id: int
) -> FrozenTrial:
    """A RUNNING trial for one grid point, with its parameters already set.

    The parameters come from the study's sampler through its public ``sample_independent``,
    exactly what ``trial.suggest_categorical`` would have recorded, so trials created
    here are indistinguishable from ones GridSampler ran itself.
    """
    space = search_space(definition)
    template = FrozenTrial(
        number=-1,
        state=TrialState.RUNNING,
        value=None,
        datetime_start=datetime.datetime.now(),
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={},
        system_attrs={schema.GRID_ID: grid_id, schema.SEARCH_SPACE: space},
        intermediate_values={},
        trial_id=-1,
    )
    params: dict[str, Any] = {}
    distributions: dict[str, BaseDistribution] = {}
    for name, values in space.items():
        distribution = CategoricalDistribution(values)
        params[name] = study.sampler.sample_independent(study, template, name, distribution)
        distributions[name] = distribution
    template.params = params
    template.distributions = distributions
    return template
