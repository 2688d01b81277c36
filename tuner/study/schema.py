"""The attribute keys tuner writes to Optuna's storage: the schema README documents.

Everything a worker, the report, ``tuner status`` and the dashboard exchange goes
through the storage under these names, and studies outlive tuner releases: a key is
renamed here or nowhere, and only with a migration, or existing studies stop resuming.
"""

from __future__ import annotations

# Trial system attributes.
GRID_ID = "grid_id"
"""Index of the trial's grid point; the same key GridSampler itself writes."""
SEARCH_SPACE = "search_space"
"""The grid, as GridSampler records it beside ``grid_id``."""
FAIL_REASON = "tuner.fail_reason"
"""Why a FAIL trial failed: shown by ``tuner status`` and the dashboard."""
STALE_REASON = "stale heartbeat"
"""The FAIL_REASON of a trial whose worker stopped sending heartbeats (its own budget)."""
RETRYABLE = "tuner.retryable"
"""False when re-running the point would fail the same way (a diverged loss)."""
INTERRUPTED = "tuner.interrupted"
"""True when a deliberate stop (SIGINT, SIGTERM) ended the trial: no attempt is charged."""

# Trial user attributes.
FOLD_PREFIX = "fold_"
"""``fold_0`` ... ``fold_{R*k-1}``: one fold's accuracy, loss, seconds and per-epoch
history; fold ``f`` is fold ``f % k`` of repetition ``f // k``.

Every "accuracy" key and field (here, in the histories and in the final fit) holds the
task's score: accuracy for a classification, R² for a regression (see ``TASK``). The
names date from when every study classified digits, and a key is renamed only with a
migration."""
UNITS = "units"
FOLD_ACCURACIES = "fold_accuracies"
FOLD_LOSSES = "fold_losses"
ACCURACY_STD = "accuracy_std"
ACCURACY_INTERVAL = "accuracy_interval"
"""[low, high] of the 95% Nadeau-Bengio corrected t interval of the mean CV accuracy."""
METRIC_NAME = "CV accuracy"
"""The objective of a classification study, as optuna-dashboard names it (a regression's
is "CV R²": ``StudyConfig.metric_name``)."""
LOSS_MEAN = "loss_mean"
LOSS_STD = "loss_std"
TRAIN_SECONDS = "train_seconds"
WALL_SECONDS = "wall_seconds"
HOST = "host"
PID = "pid"
DEVICE = "device"
TRAINER = "trainer"
BACKEND = "backend"
"""The Keras backend that trained the trial (``tensorflow`` or ``jax``); also on the study."""
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
"""The per-epoch curves of every fold and of the final fit."""

# Study user attributes: the record that keeps a study's trials comparable.
STUDY_PREFIX = "tuner."
"""Prefix of every study attribute tuner writes; its presence marks a tuner study."""
DEFINITION = STUDY_PREFIX + "definition"
DEFINITION_HASH = STUDY_PREFIX + "definition_hash"
DATASET = STUDY_PREFIX + "dataset"
DATA_FINGERPRINT = STUDY_PREFIX + "data_fingerprint"
EPOCHS = STUDY_PREFIX + "epochs"
FOLD_SEED = STUDY_PREFIX + "fold_seed"
REPEATS = STUDY_PREFIX + "repeats"
"""R of repeated k-fold CV (``--repeats``): R splits, R*k folds per point; absent means 1."""
SPLIT_SEEDS = STUDY_PREFIX + "split_seeds"
"""The R splits' seeds, repetition 0 first (``tuner.data.repeat_seed``); absent means
``[fold_seed]``."""
STUDY_BACKEND = STUDY_PREFIX + "backend"
TASK = STUDY_PREFIX + "task"
"""What the data poses (``tuner.data.Task.to_dict``): classification or regression, the
class names, each column and what was done to it; absent: MNIST's ten digits."""
FINAL_FIT = STUDY_PREFIX + "final_fit"
DASHBOARD_ARTIFACTS = STUDY_PREFIX + "dashboard_artifacts"

# Study system attributes.
WORKER_PREFIX = "tuner.worker:"
"""``tuner.worker:HOST/PID``: when that worker last said it was alive (Unix time; 0 once it
stopped), so claims can give each live worker a fair share of what is waiting."""


def fold_key(fold: int) -> str:
    """The user attribute holding one fold's result."""
    return f"{FOLD_PREFIX}{fold}"


def fold_of_key(key: str) -> int | None:
    """The fold a user attribute key holds, or None for any other key."""
    if key.startswith(FOLD_PREFIX) and key[len(FOLD_PREFIX) :].isdigit():
        return int(key[len(FOLD_PREFIX) :])
    return None
