"""optuna-dashboard from Python: ``tuner dashboard``."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from tuner.api._setup import output, quiet_optuna
from tuner.errors import TunerError
from tuner.reporting import serve
from tuner.storages import resolve_url


def serve_dashboard(
    storage: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    artifacts: str | Path | None = None,
    console: Console | None = None,
) -> None:
    """Serve optuna-dashboard on the storage, with the report's pictures, until interrupted.

    It has no login and can delete studies: keep ``host`` local unless the network is
    trusted.

    Args:
        storage: Optuna storage URL (default: ``$TUNER_STORAGE``, else
            ``sqlite:///tuner.db``, which must exist).
        host: Address to bind.
        port: Port to serve on.
        artifacts: Artifact folder (default: ``$TUNER_ARTIFACTS``, else beside an SQLite
            file, else ``./tuner-artifacts``).
        console: Where the address is announced (default: standard output).

    Raises:
        TunerError: The storage does not exist, or the address cannot be bound.
    """
    quiet_optuna(False)
    folder = Path(artifacts) if artifacts is not None else None
    try:
        serve(resolve_url(storage), host, port, folder, output(console))
    except OSError as exc:
        raise TunerError(f"cannot serve on {host}:{port}: {exc.strerror}; try --port") from None
