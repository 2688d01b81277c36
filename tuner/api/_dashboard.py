"""optuna-dashboard from Python: ``tuner dashboard``."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from rich.console import Console

from tuner.api._options import DashboardOptions, WorkerOptions, check_known, documented
from tuner.api._setup import output, quiet_optuna
from tuner.errors import TunerError
from tuner.reporting import serve


@documented(DashboardOptions)
def serve_dashboard(
    storage: str | None = None, *, console: Console | None = None, **options: Any
) -> None:
    """Serve optuna-dashboard on the storage, with the report's pictures, until interrupted.

        It has no login and can delete studies: keep ``host`` local unless the network is
        trusted.

        Args:
            storage: Optuna storage URL (default: ``$TUNER_STORAGE``, else
                ``sqlite:///tuner.db``, which must exist).
            console: Where the address is announced (default: standard output).
            **options: Any option of ``tuner dashboard`` by its field name:
    OPTIONS

        Raises:
            TunerError: The storage does not exist, or the address cannot be bound.
    """
    check_known(options, DashboardOptions)
    url = WorkerOptions(storage=storage).storage_url
    chosen = DashboardOptions.take(options)
    quiet_optuna(False)
    folder = Path(chosen.artifacts) if chosen.artifacts is not None else None
    if folder is not None and folder.exists() and not folder.is_dir():
        raise TunerError(f"--artifacts {folder} is a file, not a folder; give a folder")
    try:
        socket.getaddrinfo(chosen.host, chosen.port)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise TunerError(f"--host {chosen.host!r}: not an address to bind ({reason})") from None
    try:
        serve(url, chosen.host, chosen.port, folder, output(console))
    except OSError as exc:
        raise TunerError(
            f"cannot serve on {chosen.host}:{chosen.port}: {exc.strerror}; try --port"
        ) from None
