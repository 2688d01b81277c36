"""Cross-validation as the runner's evaluate callable: real TensorFlow, real SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

from tuner.data import DatasetSpec, load_dataset, stratified_folds
from tuner.scheduling import GridScheduler, TrialRunner
from tuner.storages import open_storage
from tuner.study import StudyConfig, create_or_resume, load_definitions, schema
from tuner.training import STRATEGIES, CrossValidation


@pytest.mark.parametrize("trainer", ["packed", "fast"])
def test_runner_with_cross_validation_records_every_fold(
    tmp_path: Path, studies_dir: Path, synthetic_npz: Path, trainer: str
) -> None:
    url = f"sqlite:///{tmp_path / 'cv.db'}"
    storage = open_storage(url)
    spec = DatasetSpec.parse(str(synthetic_npz))
    dataset = load_dataset(spec)
    definition = load_definitions(studies_dir)["tiny"]
    config = StudyConfig("tiny", definition, spec, dataset.fingerprint(), epochs=2)
    study = create_or_resume(storage, config)
    evaluate = CrossValidation(
        definition,
        dataset,
        stratified_folds(dataset.y_train, 3, config.fold_seed),
        epochs=2,
        base_seed=config.fold_seed,
        device="CPU:0",
        strategy=STRATEGIES[trainer],
    )
    scheduler = GridScheduler(storage, url, study, definition)
    report = TrialRunner(scheduler, evaluate).run()

    trials = study.get_trials()
    assert report.evaluated == 3 == len(trials)
    assert all(t.state == TrialState.COMPLETE for t in trials)
    for trial in trials:
        accuracies = trial.user_attrs[schema.FOLD_ACCURACIES]
        assert len(accuracies) == 3
        assert trial.value == pytest.approx(sum(accuracies) / 3)
        assert 0.0 <= trial.value <= 1.0
        fold = trial.user_attrs[schema.fold_key(0)]
        assert set(fold["history"]) == set(schema.HISTORY_KEYS)
        assert len(fold["history"]["val_loss"]) == 2
        assert fold["accuracy"] == fold["history"]["val_accuracy"][-1]
        assert trial.user_attrs[schema.DEVICE] == "CPU:0"
        assert trial.user_attrs[schema.TRAINER] == trainer
        assert trial.user_attrs[schema.PID] > 0 and trial.user_attrs[schema.HOST]
        assert trial.user_attrs[schema.UNITS] == [trial.params["l1"], 8]
        # The learning curve: per epoch, the mean validation accuracy over the folds.
        assert sorted(trial.intermediate_values) == [1, 2]
        histories = [trial.user_attrs[schema.fold_key(f)]["history"] for f in range(3)]
        for epoch in (1, 2):
            mean = sum(h["val_accuracy"][epoch - 1] for h in histories) / 3
            assert trial.intermediate_values[epoch] == pytest.approx(mean)
    # The synthetic classes are easy: the widest point learns well above chance.
    assert max(t.value for t in trials) > 0.3
