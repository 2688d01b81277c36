"""TUNER_STORAGE_FILE: a storage URL read from an owner-only file (Slurm and other clusters,
where a URL on a command line would show its password to ``ps`` and ``sacct``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tuner.errors import TunerError
from tuner.storages import resolve_url

SECRET = "s3cr3t-in-file"
URL = f"postgresql+psycopg://tuner:{SECRET}@db.example:5432/tuner"


def storage_file(folder: Path, text: str, mode: int) -> Path:
    path = folder / "storage-url"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_file_comes_after_the_flag_and_tuner_storage(tmp_path: Path) -> None:
    path = storage_file(tmp_path, f"\n  {URL}  \n", 0o600)
    env = {"TUNER_STORAGE_FILE": str(path)}
    assert resolve_url(None, env) == URL
    assert resolve_url("sqlite:///a.db", env) == "sqlite:///a.db"
    assert resolve_url(None, {**env, "TUNER_STORAGE": "sqlite:///b.db"}) == "sqlite:///b.db"
    assert resolve_url(None, {**env, "TUNER_STORAGE_FILE": ""}) == "sqlite:///tuner.db"
    # Stricter than 0600 is fine too.
    path.chmod(0o400)
    assert resolve_url(None, env) == URL


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_file_others_may_read_is_refused_without_showing_it(tmp_path: Path, mode: int) -> None:
    path = storage_file(tmp_path, URL + "\n", mode)
    with pytest.raises(TunerError) as refused:
        resolve_url(None, {"TUNER_STORAGE_FILE": str(path)})
    message = str(refused.value)
    assert "chmod 600" in message and f"{mode:o}" in message and str(path) in message
    assert SECRET not in message and "\n" not in message


def test_a_missing_or_empty_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(TunerError, match="cannot be read: No such file"):
        resolve_url(None, {"TUNER_STORAGE_FILE": str(missing)})
    empty = storage_file(tmp_path, "\n \n", 0o600)
    with pytest.raises(TunerError, match="is empty"):
        resolve_url(None, {"TUNER_STORAGE_FILE": str(empty)})


def test_the_cli_reads_the_file_and_refuses_an_open_one_in_one_line(tmp_path: Path) -> None:
    """`tuner status` on a file naming an SQLite database opens that database; on an open
    file it prints one line, exit 1 or 2, and neither the URL nor its password."""
    database = tmp_path / "from-file.db"
    path = storage_file(tmp_path, f"sqlite:///{database}\n", 0o600)

    def status(env_file: Path) -> subprocess.CompletedProcess[str]:
        import os

        env = {k: v for k, v in os.environ.items() if k != "TUNER_STORAGE"}
        env["TUNER_STORAGE_FILE"] = str(env_file)
        return subprocess.run(
            [sys.executable, "-m", "tuner", "status"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    done = status(path)
    # The database named in the file was looked for (it does not exist: tuner says so).
    assert str(database) in done.stdout + done.stderr, done.stdout + done.stderr
    assert not (tmp_path / "tuner.db").exists()

    leaky = storage_file(tmp_path, URL + "\n", 0o644)
    done = status(leaky)
    assert done.returncode != 0
    output = (done.stdout + done.stderr).strip()
    assert "chmod 600" in output and len(output.splitlines()) == 1, output
    assert SECRET not in output


def test_a_fifo_or_a_huge_file_is_refused_before_reading(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    huge = tmp_path / "huge"
    with open(huge, "wb") as handle:
        handle.truncate(4 << 30)  # sparse: 4 GiB declared, nothing on disk
    huge.chmod(0o600)
    for path in (fifo, huge):  # a read would block for ever, or take 8 GB
        with pytest.raises(TunerError, match="is not a regular file of at most"):
            resolve_url(None, {"TUNER_STORAGE_FILE": str(path)})
