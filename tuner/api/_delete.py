"""``tuner delete``: remove studies from a storage, after saying what would be lost.

A study is the record of everything its workers trained, so removing one is never
silent: the CLI asks first (``--yes`` for scripts), Python needs ``yes=True``, and a study
whose trials are running (a worker may be training them right now) is refused unless
forced, so a live fleet does not lose the study under its feet.
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.trial import TrialState
from rich.console import Console

from tuner.api._setup import names_list, output, quiet_optuna
from tuner.errors import TunerError
from tuner.storages import mask_password, open_storage, resolve_url
from tuner.study import resolve_study_names


def delete(
    names: str | Sequence[str],
    *,
    storage: str | None = None,
    yes: bool = False,
    force: bool = False,
    console: Console | None = None,
) -> list[str]:
    """Remove tuner studies, their trials and records, from a storage: ``tuner delete``.

    Args:
        names: A study name or several (``all`` is refused: name them).
        storage: Optuna storage URL (default: ``$TUNER_STORAGE``, else
            ``sqlite:///tuner.db``, which must exist).
        yes: Confirm the removal (the CLI asks instead).
        force: Remove a study even while some of its trials are running.
        console: Where the confirmation goes (default: standard output).

    Returns:
        The names of the studies removed.

    Raises:
        TunerError: No name, ``all``, a study the storage lacks, running trials without
            ``force``, or no ``yes``.
    """
    wanted = names_list(names)
    if not wanted or "all" in wanted:
        raise TunerError("name the studies to delete (tuner delete NAME ...); 'all' is refused")
    if not yes:
        raise TunerError("deleting a study cannot be undone: pass yes=True (--yes) to confirm")
    quiet_optuna(False)
    url = resolve_url(storage)
    opened = open_storage(url, must_exist=True)
    studies = resolve_study_names(opened, wanted)
    for name in studies:
        running = running_trials(opened, name)
        if running and not force:
            raise TunerError(
                f"study '{name}' has {running} running trial(s): a worker may be training "
                "them now; stop the workers first, or pass --force"
            )
    shown = output(console)
    for name in studies:
        trials = len(optuna.load_study(study_name=name, storage=opened).get_trials(deepcopy=False))
        optuna.delete_study(study_name=name, storage=opened)
        shown.print(
            f"deleted study {name} ({trials} trials) from {mask_password(url)}", highlight=False
        )
    return studies


def running_trials(storage: optuna.storages.BaseStorage, name: str) -> int:
    """How many of a study's trials are RUNNING."""
    study = optuna.load_study(study_name=name, storage=storage)
    return len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def describe_deletion(names: Sequence[str], storage: str | None) -> str:
    """What ``tuner delete`` is about to remove, for its question."""
    url = resolve_url(storage)
    opened = open_storage(url, must_exist=True)
    parts = []
    for name in resolve_study_names(opened, list(names)):
        study = optuna.load_study(study_name=name, storage=opened)
        trials = study.get_trials(deepcopy=False)
        complete = sum(t.state == TrialState.COMPLETE for t in trials)
        parts.append(f"{name} ({complete} complete of {len(trials)} trials)")
    return f"delete {', '.join(parts)} from {mask_password(url)}? This cannot be undone"
