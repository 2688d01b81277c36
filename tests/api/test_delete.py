"""``tuner delete`` and the refusal that points to it: a changed definition names its keys."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest

import tuner
from tests.helpers import make_study, run_tuner
from tuner.errors import TunerError
from tuner.storages import open_storage
from tuner.study import load_definition, tuner_study_names
from tuner.study._config import definition_changes


def test_a_changed_definition_names_each_key_and_both_ways_out(
    tmp_path: Path, studies_dir: Path
) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    make_study(url, studies_dir)
    with pytest.raises(TunerError) as refused:
        make_study(url, studies_dir, batch_size=64, learning_rate=0.01)
    message = str(refused.value)
    assert "protocol.batch_size 32 -> 64" in message
    assert "protocol.learning_rate 0.001 -> 0.01" in message
    assert "--study-name NEW" in message and "tuner delete tiny" in message
    # A setting added later (absent from an old record) shows its default as the old value.
    old = load_definition(studies_dir / "tiny.toml")
    decayed = dataclasses.replace(old, protocol=dataclasses.replace(old.protocol, weight_decay=0.1))
    assert definition_changes(old, decayed) == ["protocol.weight_decay (none) -> 0.1"]


def test_delete_asks_refuses_running_studies_and_removes(tmp_path: Path, studies_dir: Path) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    make_study(url, studies_dir)
    make_study(url, studies_dir, name="other")
    with pytest.raises(TunerError, match="pass yes=True"):
        tuner.delete("tiny", storage=url)
    with pytest.raises(TunerError, match="'all' is refused"):
        tuner.delete("all", storage=url, yes=True)
    with pytest.raises(TunerError, match="no study named"):
        tuner.delete("absent", storage=url, yes=True)
    storage = open_storage(url)
    study = optuna.load_study(study_name="tiny", storage=storage)
    running = study.ask()  # a worker holding a trial
    with pytest.raises(TunerError, match=r"1 running trial.*--force"):
        tuner.delete("tiny", storage=url, yes=True)
    study.tell(running, 0.5)
    assert tuner.delete("tiny", storage=url, yes=True) == ["tiny"]
    assert tuner_study_names(open_storage(url)) == ["other"]
    # The command asks first; "n" keeps the study, --yes does not ask.
    kept = run_tuner("delete", "other", "--storage", url, cwd=tmp_path, input_text="n\n")
    assert kept.returncode == 2 and "delete other (0 complete of 0 trials)" in kept.stdout
    assert "nothing deleted" in kept.stderr
    gone = run_tuner("delete", "other", "--yes", "--storage", url, cwd=tmp_path)
    assert gone.returncode == 0 and "deleted study other (0 trials)" in gone.stdout
    assert tuner_study_names(open_storage(url)) == []


def test_install_hints_keep_their_extras_in_help(tmp_path: Path) -> None:
    result = run_tuner("launch", "--help", cwd=tmp_path, env={"COLUMNS": "250"})
    assert "pip install 'tuner[jax]'" in result.stdout
