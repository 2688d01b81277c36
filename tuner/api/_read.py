"""Reading a storage from Python: studies' results and their live status."""

from __future__ import annotations

from collections.abc import Sequence

from tuner.api._setup import names_list, quiet_optuna
from tuner.reporting import Results, StatusTable, study_status
from tuner.reporting import load_results as load_from_storage
from tuner.storages import open_storage, resolve_url
from tuner.study import load_studies, tuner_study_names


def load_results(
    names: str | Sequence[str] | None = None, *, storage: str | None = None
) -> Results:
    """The results recorded in a storage, complete or not; nothing is trained.

    Args:
        names: A study name or several (default, or ``"all"``: every tuner study).
        storage: Optuna storage URL (default: ``$TUNER_STORAGE``, else
            ``sqlite:///tuner.db``, which must exist).

    Returns:
        Each study's ranked grid points, by study name.

    Raises:
        TunerError: The storage does not exist or cannot be reached, a named study is
            not in it, or it holds no tuner study.
    """
    quiet_optuna(False)
    opened = open_storage(resolve_url(storage), must_exist=True)
    return load_from_storage(opened, names_list(names))


def status(storage: str | None = None) -> StatusTable:
    """Where every tuner study in a storage stands: ``tuner status``.

    Read-only, so it is safe beside running workers.

    Args:
        storage: Optuna storage URL (default: ``$TUNER_STORAGE``, else
            ``sqlite:///tuner.db``, which must exist).

    Returns:
        One status per study (grid size, complete, running, waiting, failed attempts,
        best point, ETA); empty when the storage holds no tuner study.

    Raises:
        TunerError: The storage does not exist or cannot be reached.
    """
    quiet_optuna(False)
    opened = open_storage(resolve_url(storage), must_exist=True)
    loaded = load_studies(opened, []) if tuner_study_names(opened) else []
    return StatusTable([study_status(opened, study) for study, _ in loaded])
