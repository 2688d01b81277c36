"""Studies: what a variant searches (its definition) and the record that keeps it comparable.

A study definition is data (a TOML file); a study is the Optuna study that holds one
definition's trials, with its definition, dataset, data fingerprint and epochs recorded
on it. :mod:`tuner.study.schema` names every attribute tuner writes.
"""

from tuner.study import schema
from tuner.study._config import (
    BACKENDS,
    DEFAULT_BACKEND,
    FOLD_SEED,
    StudyConfig,
    check_backend,
    check_compatible,
    create_or_resume,
    load,
    load_studies,
    resolve_study_names,
    tuner_study_names,
)
from tuner.study._definition import (
    ACTIVATIONS,
    AXES,
    BUILTIN_STUDIES_DIR,
    OPTIMIZERS,
    PACKED_AXES,
    SETTINGS,
    Setting,
    StudyDefinition,
    TrainingProtocol,
    default_studies_dir,
    load_definition,
    load_definitions,
    parse_definition,
    select,
    shown_value,
)
from tuner.study._names import (
    MAX_NAME_LENGTH,
    check_study_name,
    inert,
    is_study_name,
    shown,
    shown_name,
)
from tuner.study._records import (
    FinalFit,
    FoldResult,
    SeedFit,
    completed_folds,
    stored_final_fit,
)
from tuner.study._sampler import (
    GRID_SEED,
    ScheduledGridSampler,
    grid_params,
    grid_sampler,
    running_trial_template,
)

__all__ = [
    "ACTIVATIONS",
    "AXES",
    "BACKENDS",
    "BUILTIN_STUDIES_DIR",
    "DEFAULT_BACKEND",
    "FOLD_SEED",
    "GRID_SEED",
    "MAX_NAME_LENGTH",
    "OPTIMIZERS",
    "PACKED_AXES",
    "SETTINGS",
    "FinalFit",
    "FoldResult",
    "ScheduledGridSampler",
    "SeedFit",
    "Setting",
    "StudyConfig",
    "StudyDefinition",
    "TrainingProtocol",
    "check_backend",
    "check_compatible",
    "check_study_name",
    "completed_folds",
    "create_or_resume",
    "default_studies_dir",
    "grid_params",
    "grid_sampler",
    "inert",
    "is_study_name",
    "load",
    "load_definition",
    "load_definitions",
    "load_studies",
    "parse_definition",
    "resolve_study_names",
    "running_trial_template",
    "schema",
    "select",
    "shown",
    "shown_name",
    "shown_value",
    "stored_final_fit",
    "tuner_study_names",
]
