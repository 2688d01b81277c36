"""A real SQLite storage holding the tiny study, for scheduler and runner tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest

from tuner.data import DatasetSpec
from tuner.scheduling import GridScheduler
from tuner.storages import open_storage
from tuner.study import StudyConfig, create_or_resume, load, load_definitions


@dataclass
class TinyStudy:
    url: str
    storage: optuna.storages.RDBStorage
    study: optuna.Study
    config: StudyConfig

    def scheduler(self, **kwargs: object) -> GridScheduler:
        """A scheduler as a fresh worker process would build it."""
        study, config = load(self.storage, self.config.study_name)
        return GridScheduler(self.storage, self.url, study, config.definition, **kwargs)


@pytest.fixture
def tiny(tmp_path: Path, studies_dir: Path) -> TinyStudy:
    url = f"sqlite:///{tmp_path / 'scheduling.db'}"
    storage = open_storage(url, heartbeat_interval=1, grace_period=2)
    config = StudyConfig(
        study_name="tiny",
        definition=load_definitions(studies_dir)["tiny"],
        dataset=DatasetSpec("synthetic"),
        data_fingerprint="0" * 32,
        epochs=1,
    )
    return TinyStudy(url, storage, create_or_resume(storage, config), config)
