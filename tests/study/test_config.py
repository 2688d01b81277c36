import threading
from dataclasses import replace
from pathlib import Path

import optuna
import pytest

from tuner.data import DatasetSpec
from tuner.errors import TunerError
from tuner.storages import open_storage
from tuner.study import (
    ScheduledGridSampler,
    StudyConfig,
    create_or_resume,
    load,
    load_definitions,
    schema,
    tuner_study_names,
)


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
        ({"repeats": 2}, "CV repeats (stored 1, now 2)"),
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
    with pytest.raises(TunerError, match=r"no study named 'other'.*tuner studies there: tiny"):
        load(storage, "other")


@pytest.mark.parametrize(
    "name",
    ["../../escaped", "/abs/path", "[/x]", "a\x1b[31mred", "$\\foo$", ".hidden", "", "x" * 129],
)
def test_names_tuner_would_not_create_are_refused_in_one_line(
    tmp_path: Path, config: StudyConfig, name: str
) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    with pytest.raises(TunerError, match=r"^study name .* is not allowed: use up to 128") as raised:
        create_or_resume(storage, replace(config, study_name=name))
    assert "\x1b" not in str(raised.value)  # shown escaped, never acting on the terminal
    assert optuna.get_all_study_summaries(storage) == []


def test_a_study_tuner_did_not_create_is_refused_and_left_untouched(
    tmp_path: Path, config: StudyConfig
) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    plain = optuna.create_study(storage=storage, study_name="tiny")
    plain.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    with pytest.raises(TunerError, match=r"^a study named 'tiny' already exists .* did not create"):
        create_or_resume(storage, config)
    assert optuna.load_study(study_name="tiny", storage=storage).user_attrs == {}


def test_a_record_its_creator_never_finished_is_finished(
    tmp_path: Path, config: StudyConfig
) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    begun = optuna.create_study(storage=storage, study_name="tiny", direction="maximize")
    begun.set_user_attr(schema.EPOCHS, 99)  # a creator that died before the definition
    study = create_or_resume(storage, config)
    assert StudyConfig.from_study(study) == config


def _create_together(url: str, configs: list[StudyConfig]) -> list[str]:
    """Call create_or_resume for each config at the same moment, one thread each."""
    start = threading.Barrier(len(configs))
    outcomes = [""] * len(configs)

    def create(index: int) -> None:
        storage = open_storage(url)
        start.wait()
        try:
            create_or_resume(storage, configs[index])
            outcomes[index] = "created"
        except TunerError as exc:
            outcomes[index] = f"refused: {exc}"
        except Exception as exc:  # what the race used to produce (KeyError)
            outcomes[index] = f"crashed: {type(exc).__name__}"

    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(configs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.parametrize("round_", range(6))
def test_concurrent_creation_is_atomic(tmp_path: Path, config: StudyConfig, round_: int) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    other = replace(config, epochs=7, data_fingerprint="def")
    outcomes = _create_together(url, [config, other])
    assert sorted(o.split(":")[0] for o in outcomes) == ["created", "refused"], outcomes
    winner = config if outcomes[0] == "created" else other
    stored = StudyConfig.from_study(optuna.load_study(study_name="tiny", storage=url))
    assert stored == winner  # one caller's whole record, never a mix

    same = _create_together(f"sqlite:///{tmp_path / 'same.db'}", [config, config])
    assert same == ["created", "created"]


def test_tuner_studies_list_only_names_tuner_creates(tmp_path: Path, config: StudyConfig) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    create_or_resume(storage, config)
    hostile = optuna.create_study(storage=storage, study_name="../../[/x]\x1b[2J")
    for key, value in config.to_attrs().items():  # a forged tuner record
        hostile.set_user_attr(key, value)
    assert tuner_study_names(storage) == ["tiny"]


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        ({schema.DEFINITION: "garbage"}, "not a tuner definition record"),
        ("nan learning rate", "key 'protocol.learning_rate': must be a finite number"),
        ("huge units", "key 'grid.l1'"),
        ({schema.EPOCHS: "many"}, "its tuner record is damaged"),
        ({schema.REPEATS: 0}, "its tuner record is damaged"),
        ({schema.REPEATS: 2, schema.SPLIT_SEEDS: [42, 7]}, "split seeds"),
    ],
)
def test_a_damaged_record_is_refused_by_name_and_skipped_when_listing_all(
    tmp_path: Path, config: StudyConfig, damage: object, words: str
) -> None:
    from tuner.study import load_studies

    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    create_or_resume(storage, config)
    create_or_resume(storage, replace(config, study_name="other"))
    study = optuna.load_study(study_name="other", storage=storage)
    record = config.to_attrs()[schema.DEFINITION]
    if damage == "nan learning rate":
        damage = {
            schema.DEFINITION: {
                **record,
                "protocol": {**record["protocol"], "learning_rate": float("nan")},
            }
        }
    elif damage == "huge units":
        damage = {schema.DEFINITION: {**record, "grid": {"l1": [200_000], "l2": [8]}}}
    for key, value in damage.items():  # type: ignore[union-attr]
        study.set_user_attr(key, value)
    with pytest.raises(TunerError, match=words) as refused:
        load(storage, "other")
    assert "\n" not in str(refused.value)
    assert [c.study_name for _, c in load_studies(storage, [])] == ["tiny"]
    with pytest.raises(TunerError, match=words):
        load_studies(storage, ["other"])


def test_repeats_and_their_split_seeds_are_recorded_and_a_resume_must_match(
    tmp_path: Path, config: StudyConfig
) -> None:
    from tuner.data import repeat_seed

    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    repeated = replace(config, study_name="twice", repeats=2)
    study = create_or_resume(storage, repeated)
    assert study.user_attrs[schema.REPEATS] == 2
    assert study.user_attrs[schema.SPLIT_SEEDS] == [42, repeat_seed(42, 1)]
    assert StudyConfig.from_study(study) == repeated
    assert repeated.n_folds == 6 and repeated.cv_label == "2x3-fold CV"
    with pytest.raises(TunerError) as refused:
        create_or_resume(storage, replace(repeated, repeats=3))
    assert "CV repeats (stored 2, now 3)" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_study_from_before_repeats_is_read_as_one_repetition(
    tmp_path: Path, config: StudyConfig
) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = create_or_resume(storage, config)
    # What tuner wrote before --repeats existed: no repeats, no split seeds.
    attrs = {
        k: v for k, v in study.user_attrs.items() if k not in (schema.REPEATS, schema.SPLIT_SEEDS)
    }
    old = optuna.create_study(storage=storage, study_name="old", direction="maximize")
    for key, value in attrs.items():
        old.set_user_attr(key, value)
    stored = StudyConfig.from_study(old)
    assert stored.repeats == 1 and stored.split_seeds == [stored.fold_seed]
    assert create_or_resume(storage, replace(config, study_name="old")).study_name == "old"
