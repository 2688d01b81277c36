"""One Optuna study per variant, and the record on it that keeps its trials comparable.

A study stores its definition, dataset spec, data fingerprint, the data's task (classes,
features and what was done to them), epochs, fold seed and cross-validation repeats (with
each repetition's split seed) as user attributes. Anyone
who later launches or joins it with different settings is refused, so trials trained
under different conditions never end up ranked together.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import optuna

from tuner.data import DatasetSpec, Task, repeat_seed
from tuner.errors import TunerError
from tuner.storages import claim_lock
from tuner.study import schema
from tuner.study._definition import StudyDefinition
from tuner.study._names import check_study_name, inert, is_study_name, shown
from tuner.study._sampler import grid_sampler

log = logging.getLogger(__name__)

FOLD_SEED = 42
CREATION_LOCK = "tuner-create:"
"""Prefix of the lock a study's creation holds (its claims lock the study name itself)."""
BACKENDS = ("tensorflow", "jax")
"""Keras backends a study's points train on (recorded on the study); the first is the
default, and the backend of studies created before backends were recorded."""
DEFAULT_BACKEND = BACKENDS[0]


@dataclass(frozen=True)
class StudyConfig:
    """Everything a worker needs to evaluate a study's grid points, as stored on the study."""

    study_name: str
    definition: StudyDefinition
    dataset: DatasetSpec
    data_fingerprint: str
    epochs: int
    fold_seed: int = FOLD_SEED
    # Studies created before backends were recorded all trained on TensorFlow.
    backend: str = DEFAULT_BACKEND
    # Repeated k-fold CV: R splits of k folds; studies created before it record none (1).
    repeats: int = 1
    # What the data poses (classes or a regression, the features); studies created before
    # tasks were recorded are the seed's ten digit classes.
    task: Task = field(default_factory=Task)

    def __post_init__(self) -> None:
        # The definition's models are shaped for the data (inputs, outputs, loss).
        object.__setattr__(self, "definition", self.definition.for_task(self.task))

    @property
    def metric_name(self) -> str:
        """The study's objective as optuna-dashboard and titles name it: ``CV accuracy``."""
        return f"CV {self.task.metric_label}"

    @property
    def split_seeds(self) -> list[int]:
        """Each repetition's split seed, repetition 0 (the fold seed itself) first."""
        return [repeat_seed(self.fold_seed, r) for r in range(self.repeats)]

    @property
    def n_folds(self) -> int:
        """Folds each grid point is scored on: R repetitions of k folds."""
        return self.repeats * self.definition.protocol.folds

    @property
    def cv_label(self) -> str:
        """How points are scored, for titles: ``3-fold CV`` or ``2x3-fold CV``."""
        k = self.definition.protocol.folds
        return f"{k}-fold CV" if self.repeats == 1 else f"{self.repeats}x{k}-fold CV"

    def epochs_of(self, params: dict[str, Any]) -> int:
        """Epochs a grid point trains: its own on a grid with an ``epochs`` axis, else the
        study's (``--epochs`` or the definition's protocol)."""
        return self.definition.epochs_at(params, self.epochs)

    @property
    def mean_epochs(self) -> float:
        """Epochs per fold over the whole grid, per point on average (what progress counts)."""
        if "epochs" in self.definition.axes:
            values: tuple[int, ...] = self.definition.axes["epochs"]
            return sum(values) / len(values)
        return self.epochs

    def to_attrs(self) -> dict[str, Any]:
        """The study user attributes that record this config."""
        return {
            schema.DEFINITION: self.definition.to_dict(),
            schema.DEFINITION_HASH: self.definition.fingerprint(),
            schema.DATASET: self.dataset.to_dict(),
            schema.DATA_FINGERPRINT: self.data_fingerprint,
            schema.EPOCHS: self.epochs,
            schema.FOLD_SEED: self.fold_seed,
            schema.STUDY_BACKEND: self.backend,
            schema.REPEATS: self.repeats,
            schema.SPLIT_SEEDS: self.split_seeds,
            schema.TASK: self.task.to_dict(),
        }

    @classmethod
    def from_study(cls, study: optuna.Study) -> StudyConfig:
        """The config recorded on a study; a clear error for a study tuner did not create."""
        attrs = study.user_attrs
        if schema.DEFINITION not in attrs:
            raise TunerError(
                f"study {shown(study.study_name)} was not created by tuner (no definition recorded)"
            )
        where = f"the definition recorded on study {shown(study.study_name)}"
        definition = StudyDefinition.from_dict(attrs[schema.DEFINITION], where)
        try:
            epochs, fold_seed = int(attrs[schema.EPOCHS]), int(attrs[schema.FOLD_SEED])
            backend = str(attrs.get(schema.STUDY_BACKEND, DEFAULT_BACKEND))
            repeats = int(attrs.get(schema.REPEATS, 1))
            if epochs < 1 or backend not in BACKENDS or repeats < 1:
                raise ValueError(f"epochs {epochs}, backend {backend!r}, repeats {repeats}")
            task = Task.from_dict(attrs[schema.TASK]) if schema.TASK in attrs else Task()
            seeds = [int(s) for s in attrs.get(schema.SPLIT_SEEDS, [fold_seed])]
            if seeds != [repeat_seed(fold_seed, r) for r in range(repeats)]:
                raise ValueError(f"split seeds {seeds} are not those of fold seed {fold_seed}")
            return cls(
                study_name=study.study_name,
                definition=definition,
                dataset=DatasetSpec.from_dict(attrs[schema.DATASET]),
                data_fingerprint=str(attrs[schema.DATA_FINGERPRINT]),
                epochs=epochs,
                fold_seed=fold_seed,
                backend=backend,
                repeats=repeats,
                task=task,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise TunerError(
                f"study {shown(study.study_name)}: its tuner record is damaged "
                f"({type(exc).__name__}: {inert(str(exc))}); it cannot be worked or reported"
            ) from None


def create_or_resume(
    storage: optuna.storages.RDBStorage, config: StudyConfig, *, mix_backends: bool = False
) -> optuna.Study:
    """Create the study, or load it after checking it was made under the same conditions.

    Atomic across processes and machines: it runs under the storage's cross-process lock
    for this study's creation, so of two launches racing to create one study, the second
    sees the first one's whole record (and is refused if its settings differ). The
    record's attributes are written with the definition last: a study without
    it was never finished by tuner (its creator died), and is finished now; a study that
    tuner did not create (trials, attributes or a direction of its own) is refused.
    ``mix_backends`` lets a study created on one Keras backend be resumed on another.

    Raises:
        TunerError: The name is not one tuner creates studies under, the study exists
            under other settings, or it exists and tuner did not create it.
    """
    check_study_name(config.study_name)
    with claim_lock(storage.url, CREATION_LOCK + config.study_name):
        return _create_or_resume(storage, config, mix_backends)


def _create_or_resume(
    storage: optuna.storages.RDBStorage, config: StudyConfig, mix_backends: bool
) -> optuna.Study:
    sampler = grid_sampler(config.definition)
    try:
        study = optuna.create_study(
            storage=storage, study_name=config.study_name, direction="maximize", sampler=sampler
        )
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=config.study_name, storage=storage, sampler=sampler)
        if schema.DEFINITION in study.user_attrs:
            check_compatible(StudyConfig.from_study(study), config, mix_backends=mix_backends)
            if study.metric_names is None:  # created before tuner named it
                _name_the_metric(study, config)
            return study
        _refuse_foreign(study)
    _name_the_metric(study, config)
    attrs = config.to_attrs()
    for key, value in attrs.items():
        if key != schema.DEFINITION:
            study.set_user_attr(key, value)
    study.set_user_attr(schema.DEFINITION, attrs[schema.DEFINITION])
    return study


def _name_the_metric(study: optuna.Study, config: StudyConfig) -> None:
    """optuna-dashboard shows the objective as "CV accuracy" (or "CV R²"), not "Objective 0"."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([config.metric_name])


def _refuse_foreign(study: optuna.Study) -> None:
    """Refuse a study tuner did not create; one it began and never finished passes."""
    own = all(key.startswith(schema.STUDY_PREFIX) for key in study.user_attrs)
    untouched = not study.get_trials(deepcopy=False)
    if own and untouched and study.direction == optuna.study.StudyDirection.MAXIMIZE:
        return
    raise TunerError(
        f"a study named '{study.study_name}' already exists in this storage and tuner did "
        "not create it; tuner never writes into another tool's study: pass --study-name NEW"
    )


def load(storage: optuna.storages.BaseStorage, study_name: str) -> tuple[optuna.Study, StudyConfig]:
    """An existing study and its recorded config, for workers that join it."""
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = ", ".join(tuner_study_names(storage)) or "none"
        raise TunerError(
            f"no study named {shown(study_name)} in this storage (tuner studies there: "
            f"{names}); create it with `tuner launch`"
        ) from None
    config = StudyConfig.from_study(study)
    # The sampler lives in the process, not the storage; the grid comes from the record.
    study.sampler = grid_sampler(config.definition)
    return study, config


def check_compatible(
    stored: StudyConfig, wanted: StudyConfig, *, mix_backends: bool = False
) -> None:
    """Refuse to mix trials trained under different conditions in one study."""
    differences = []
    if not mix_backends:
        try:
            check_backend(stored, wanted.backend)
        except TunerError:
            differences.append(
                f"backend (stored {stored.backend}, now {wanted.backend}; "
                "--mix-backends accepts both)"
            )
    if stored.definition.fingerprint() != wanted.definition.fingerprint():
        changed = definition_changes(stored.definition, wanted.definition)
        differences.append(f"study definition ({', '.join(changed) or 'grid, model or protocol'})")
    if stored.dataset != wanted.dataset:
        differences.append(
            f"dataset (stored {stored.dataset.to_dict()}, now {wanted.dataset.to_dict()})"
        )
    elif stored.data_fingerprint != wanted.data_fingerprint:
        differences.append("data content (same dataset spec, but the files changed)")
    if stored.epochs != wanted.epochs:
        differences.append(f"epochs (stored {stored.epochs}, now {wanted.epochs})")
    if stored.repeats != wanted.repeats:
        differences.append(f"CV repeats (stored {stored.repeats}, now {wanted.repeats})")
    if differences:
        raise TunerError(
            f"study '{stored.study_name}' already exists with a different "
            f"{'; '.join(differences)}: pass --study-name NEW to start a separate study, or "
            f"remove the old one with `tuner delete {stored.study_name}`"
        )


def definition_changes(stored: StudyDefinition, wanted: StudyDefinition) -> list[str]:
    """What differs between two definitions, key by key: ``grid.l1 [256, 512] -> [128]``."""

    def flat(data: Any, prefix: str = "") -> dict[str, Any]:
        if not isinstance(data, dict):
            return {prefix: data}
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return out

    defaults = StudyDefinition("", "", {}, False, 0.0)  # a setting left out: its default
    before, after = flat(stored.to_dict()), flat(wanted.to_dict())
    base = flat(defaults.to_dict())
    changes = []
    for key in sorted(set(before) | set(after)):
        if key in ("name", "description", "in_all"):
            continue
        old, new = before.get(key, base.get(key)), after.get(key, base.get(key))
        if old != new:
            changes.append(f"{key} {_shown_setting(old)} -> {_shown_setting(new)}")
    return changes


def _shown_setting(value: Any) -> str:
    return "(none)" if value is None else inert(json.dumps(value))


def check_backend(config: StudyConfig, backend: str, *, mix_backends: bool = False) -> None:
    """Refuse to train a study's points on another Keras backend than it was created on.

    Float rounding differs between backends, so mixing them puts slightly differently
    computed points in one ranking; ``mix_backends`` accepts that knowingly.
    """
    if backend != config.backend and not mix_backends:
        raise TunerError(
            f"study '{config.study_name}' trains on {config.backend}, this worker on {backend}: "
            f"set KERAS_BACKEND={config.backend} (or --backend {config.backend}), or pass "
            "--mix-backends to accept both in one study"
        )


def tuner_study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """Studies in the storage that tuner created: a recorded definition and a name tuner
    accepts (see :mod:`tuner.study._names`).

    Reads the studies' attributes only, never their trials, so listing costs the same
    at 10,000 trials as at 100.
    """
    return [
        study.study_name
        for study in storage.get_all_studies()
        if schema.DEFINITION in study.user_attrs and is_study_name(study.study_name)
    ]


def load_studies(
    storage: optuna.storages.BaseStorage, names: list[str]
) -> list[tuple[optuna.Study, StudyConfig]]:
    """The named tuner studies with their configs, or all of them (none or 'all' named).

    Listing all, a study whose record is damaged is skipped with a warning naming it, so
    one bad study in a shared storage does not stop status, reports or a fleet; a study
    named explicitly is refused in one line instead.
    """
    explicit = bool(names) and "all" not in names
    loaded = []
    for name in resolve_study_names(storage, names):
        try:
            loaded.append(load(storage, name))
        except TunerError as exc:
            if explicit:
                raise
            log.warning("skipped: %s", exc)
    return loaded


def resolve_study_names(storage: optuna.storages.BaseStorage, names: list[str]) -> list[str]:
    """The named tuner studies, or all of them when no name (or 'all') is given."""
    known = tuner_study_names(storage)
    if not names or "all" in names:
        if not known:
            raise TunerError("this storage holds no tuner studies yet; create them with launch")
        return known
    for name in names:
        if name not in known:
            raise TunerError(
                f"no study named {shown(name)} in this storage; tuner studies there: "
                f"{', '.join(known) or 'none'} (create it with `tuner launch --workers 0`)"
            )
    return names
