"""The grid sampler: a grid id means the same parameters in every process."""

from pathlib import Path

import optuna

from tuner.study import grid_params, grid_sampler, load_definition, running_trial_template

TEXT = """
[grid]
l1 = [64, 32]
learning_rate = [0.001, 0.01]
batch_norm = [true, false]
activation = ["relu", "tanh"]
"""


def test_grid_params_are_what_each_grid_ids_trial_gets(tmp_path: Path) -> None:
    path = tmp_path / "axes.toml"
    path.write_text(TEXT)
    definition = load_definition(path)
    study = optuna.create_study(sampler=grid_sampler(definition))
    table = grid_params(definition)
    assert len(table) == definition.grid_size == 16
    for grid_id, params in enumerate(table):
        assert running_trial_template(study, definition, grid_id).params == params
    # Every combination exactly once.
    combos = {tuple(sorted(params.items())) for params in table}
    assert len(combos) == 16
