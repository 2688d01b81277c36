"""`tuner dashboard`: optuna-dashboard on a tuner storage, with its artifact store.

optuna-dashboard has no authentication and can delete studies, so it binds 127.0.0.1
unless the user explicitly asks for another address.
"""

from __future__ import annotations

from pathlib import Path

from optuna.artifacts import FileSystemArtifactStore
from rich.console import Console

from tuner.storages import artifact_dir, mask_password, open_storage


def serve(url: str, host: str, port: int, artifacts: Path | None, console: Console) -> None:
    from optuna_dashboard import run_server

    storage = open_storage(url, must_exist=True)
    folder = artifacts or artifact_dir(url)
    folder.mkdir(parents=True, exist_ok=True)
    console.print(
        f"optuna-dashboard for {mask_password(url)} on http://{host}:{port}/ "
        f"(artifacts in {folder}); Ctrl-C stops it",
        highlight=False,
    )
    run_server(storage, host=host, port=port, artifact_store=FileSystemArtifactStore(folder))
