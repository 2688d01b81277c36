import io

import optuna
from rich.console import Console

from tuner.reporting import ranked_points, render_ranking
from tuner.reporting._ranking import ranking_html
from tuner.study import BUILTIN_STUDIES_DIR, load_definitions

DEFINITION = load_definitions(BUILTIN_STUDIES_DIR)["2layer"]


def study_with(values: list[tuple[int, int, float, float]]) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    distributions = {
        name: optuna.distributions.CategoricalDistribution(list(values))
        for name, values in DEFINITION.grid.items()
    }
    for l1, l2, value, std in values:
        study.add_trial(
            optuna.trial.create_trial(
                params={"l1": l1, "l2": l2},
                distributions=distributions,
                value=value,
                user_attrs={"accuracy_std": std, "wall_seconds": 12.5},
            )
        )
    study.add_trial(
        optuna.trial.create_trial(
            params={"l1": 256, "l2": 32},
            distributions=distributions,
            state=optuna.trial.TrialState.FAIL,
        )
    )
    return study


def test_ranking_is_by_value_then_trial_number_and_skips_failures() -> None:
    study = study_with([(512, 64, 0.97, 0.01), (512, 128, 0.98, 0.02), (328, 32, 0.97, 0.0)])
    points = ranked_points(study, DEFINITION)
    assert [(p.rank, p.trial_number, p.units) for p in points] == [
        (1, 1, (512, 128)),
        (2, 0, (512, 64)),
        (3, 2, (328, 32)),
    ]
    assert points[0].std_accuracy == 0.02 and points[0].seconds == 12.5


def test_rendered_table_names_the_best_point() -> None:
    study = study_with([(512, 128, 0.9783, 0.0012)])
    buffer = io.StringIO()
    render_ranking(
        Console(file=buffer, width=120), "2layer", DEFINITION, ranked_points(study, DEFINITION)
    )
    text = buffer.getvalue()
    assert "2layer: 1/9 grid points (BatchNorm + Dropout)" in text
    assert "best 2layer: l1=512 l2=128 CV accuracy 0.9783 ± 0.0012" in text


def test_records_carry_every_fold_and_missing_numbers_stay_empty() -> None:
    study = study_with([(512, 64, 0.9, 0.01)])
    fold = {"accuracy": 0.5, "loss": 1.5, "seconds": 2.0, "history": {"loss": [1.0]}}
    distributions = study.trials[0].distributions
    study.add_trial(
        optuna.trial.create_trial(
            params={"l1": 328, "l2": 32},
            distributions=distributions,
            value=0.95,
            user_attrs={
                "accuracy_std": 0.02,
                "loss_mean": 1.25,
                "fold_1": {**fold, "fold": 1, "accuracy": 0.96},
                "fold_0": {**fold, "fold": 0, "accuracy": 0.94},
            },
        )
    )
    first, second = (p.to_record("s", ["l1", "l2"]) for p in ranked_points(study, DEFINITION))
    assert first["units"] == "328-32" and (first["l1"], first["l2"]) == (328, 32)
    assert (first["fold_0_accuracy"], first["fold_1_accuracy"]) == (0.94, 0.96)
    assert first["cv_loss_mean"] == 1.25 and first["cv_loss_std"] is None
    assert "fold_0_accuracy" not in second and second["cv_loss_mean"] is None


def test_html_ranking_matches_the_terminal_one() -> None:
    points = ranked_points(study_with([(512, 128, 0.9783, 0.0012)]), DEFINITION)
    html = ranking_html("2layer", DEFINITION, points)
    assert "<caption>2layer: 1/9 grid points (BatchNorm + Dropout)</caption>" in html
    assert "<td>1</td><td>0</td><td>512</td><td>128</td><td>0.9783 ± 0.0012</td>" in html
