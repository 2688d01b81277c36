from dataclasses import replace
from pathlib import Path

import optuna
import pytest

from tuner.data import DatasetSpec
from tuner.errors import TunerError
from tuner.storages import open_storage
from tuner.study import ScheduledGridSampler, StudyConfig, create_or_resume, load, load_definitions


@pytest.fixture
def config(studies_dir: Path, synthetic_npz: Path) -> StudyConfig:
    return StudyConfig(
        study_name="tiny",
        definition=load_definitions(studies_dir)["tiny"],
        dataset=DatasetSpec.parse(str(synthetic_npz)),
        data_fingerprint="abc",
        epochs=2,
    )


def test_study_records_its_config_and_resumes(tmp_path: Path, config: StudyConfig) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = create_or_resume(storage, config)
    assert isinstance(study.sampler, optuna.samplers.GridSampler)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert StudyConfig.from_study(study) == config
    again, stored = load(storage, "tiny")
    assert stored == config and again.study_name == study.study_name
    assert isinstance(again.sampler, ScheduledGridSampler)  # grid points come from the worker
    create_or_resume(storage, config)
    assert len(optuna.get_all_study_summaries(storage)) == 1


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"epochs": 3}, "epochs (stored 2, now 3)"),
        ({"data_fingerprint": "xyz"}, "data content"),
        ({"dataset": DatasetSpec("fashion-mnist")}, "dataset"),
    ],
)
def test_changed_settings_are_refused(
    tmp_path: Path, config: StudyConfig, change: dict, words: str
) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    create_or_resume(storage, config)
    with pytest.raises(TunerError) as error:
        create_or_resume(storage, replace(config, **change))
    assert words in str(error.value)
    assert "--study-name" in str(error.value)


def test_changed_grid_is_refused(tmp_path: Path, config: StudyConfig) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    create_or_resume(storage, config)
    wider = replace(config.definition, grid={"l1": (8, 16, 32, 64), "l2": (8,)})
    with pytest.raises(TunerError, match="study definition"):
        create_or_resume(storage, replace(config, definition=wider))


def test_loading_an_unknown_study_lists_the_known_ones(tmp_path: Path, config) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    create_or_resume(storage, config)
    with pytest.raises(TunerError, match=r"no study named 'other'.*studies there: tiny"):
        load(storage, "other")
