from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import free_port
from tests.storages.test_url import assert_hidden, url_with_password
from tuner.errors import TunerError
from tuner.storages import (
    DEFAULT_STORAGE,
    claim_lock,
    mask_password,
    open_storage,
    resolve_url,
    sqlite_path,
)


def test_url_resolution_order() -> None:
    assert resolve_url("sqlite:///a.db", {"TUNER_STORAGE": "sqlite:///b.db"}) == "sqlite:///a.db"
    assert resolve_url(None, {"TUNER_STORAGE": "sqlite:///b.db"}) == "sqlite:///b.db"
    assert resolve_url(None, {}) == DEFAULT_STORAGE == "sqlite:///tuner.db"


def test_password_is_masked() -> None:
    url = "postgresql+psycopg://alice:s3cr3t@db.example:5432/tuner"
    masked = mask_password(url)
    assert "s3cr3t" not in masked
    assert masked == "postgresql+psycopg://alice:***@db.example:5432/tuner"
    assert "s3cr3t" not in mask_password("not a url://bob:s3cr3t@host/db")


def test_sqlite_file_is_created_in_wal_mode(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'tuner.db'}"
    open_storage(url)
    path = sqlite_path(url)
    assert path is not None and path.is_file()
    import sqlite3

    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_missing_sqlite_file_is_refused_when_it_must_exist(tmp_path: Path) -> None:
    with pytest.raises(TunerError, match="no such database file"):
        open_storage(f"sqlite:///{tmp_path / 'typo.db'}", must_exist=True)
    assert not (tmp_path / "typo.db").exists()
    with pytest.raises(TunerError, match=f"no such folder {tmp_path / 'typo'}; check the path"):
        open_storage(f"sqlite:///{tmp_path / 'typo' / 'tuner.db'}", must_exist=True)
    assert not (tmp_path / "typo").exists()


def test_unreachable_postgres_names_url_without_password() -> None:
    url = f"postgresql+psycopg://tuner:hunter2@127.0.0.1:{free_port()}/tuner"
    with pytest.raises(TunerError) as error:
        open_storage(url)
    message = str(error.value)
    assert "hunter2" not in message
    assert "cannot open storage postgresql+psycopg://tuner:***@127.0.0.1" in message
    assert "\n" not in message


def test_bad_url_is_a_clear_error() -> None:
    with pytest.raises(TunerError, match="not a database URL"):
        open_storage("tuner.db")


def test_claim_lock_is_exclusive_across_threads(tmp_path: Path) -> None:
    import threading
    import time

    url = f"sqlite:///{tmp_path / 'lock.db'}"
    inside = []
    overlaps = []

    def hold() -> None:
        with claim_lock(url, "study"):
            if inside:
                overlaps.append(True)
            inside.append(1)
            time.sleep(0.05)
            inside.pop()

    threads = [threading.Thread(target=hold) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not overlaps


def test_postgres_without_room_for_a_worker_is_refused_with_numbers(postgres_server) -> None:
    from tests.postgres import PASSWORD

    postgres_server.psql(f"CREATE ROLE tight LOGIN PASSWORD '{PASSWORD}' CONNECTION LIMIT 2")
    postgres_server.psql("CREATE DATABASE tight OWNER tight")
    url = f"postgresql+psycopg://tight:{PASSWORD}@127.0.0.1:{postgres_server.port}/tight"
    with pytest.raises(TunerError) as error:
        open_storage(url)
    message = str(error.value)
    assert "role 'tight' has connection limit 2 with 0 in use; a worker needs 3" in message
    assert PASSWORD not in message


def test_postgres_storage_opens_with_room(postgres_url: str) -> None:
    storage = open_storage(postgres_url)
    assert storage.get_heartbeat_interval() == 10


def test_many_processes_opening_a_new_sqlite_file_at_once(tmp_path: Path) -> None:
    """Optuna creates its tables on first open; without a lock, racing creators collide."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code = (
        "import sys\nfrom tuner.storages import open_storage\n"
        "from tuner.errors import TunerError\n"
        f"try:\n    open_storage({url!r})\nexcept TunerError as exc:\n"
        "    print(exc); sys.exit(1)\n"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    outcomes = [(p.wait(timeout=120), p.stdout.read()) for p in processes]
    assert all(code == 0 for code, _ in outcomes), outcomes


def test_sqlite_under_a_file_names_the_folder_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    with pytest.raises(TunerError) as error:
        open_storage(f"sqlite:///{tmp_path / 'afile' / 'sub' / 't.db'}")
    message = str(error.value)
    assert f"folder {tmp_path / 'afile' / 'sub'}" in message
    assert "create it" in message and "\n" not in message


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_sqlite_where_no_file_can_be_made_fails_at_once(tmp_path: Path) -> None:
    """Before, the claim lock's file could not be created and the open waited 120 s for it."""
    with pytest.raises(TunerError) as error:
        open_storage("sqlite:////proc/self/t.db")
    message = str(error.value)
    assert "cannot create files in /proc/" in message
    assert "claim lock" not in message and "\n" not in message


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_sqlite_in_memory_is_refused_at_open(url: str) -> None:
    with pytest.raises(TunerError, match="in memory is lost"):
        open_storage(url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://u:TopSecret1@127.0.0.1:{port}/db?application_name=TopSecret1x",
        "mysql+pymysql://u@127.0.0.1:{port}/db?passwd=TopSecret1",
        "postgresql+psycopg://u@127.0.0.1:{port}/db?password=TopSecret1",
        "postgresql+psycopg://u:TopSecret1@127.0.0.1:notaport/db",
        "postgresql+psycopg//u:TopSecret1@127.0.0.1:{port}/db",
    ],
)
def test_open_storage_errors_never_hold_the_password(url: str) -> None:
    with pytest.raises(TunerError) as error:
        open_storage(url.format(port=free_port()))
    message = str(error.value)
    assert "TopSecret1" not in message
    assert "\n" not in message


@settings(max_examples=40, deadline=None)
@given(
    url_with_password(
        host=st.just("127.0.0.1"),
        port_text=st.builds(lambda: str(free_port())),
        scheme=st.sampled_from(["postgresql+psycopg://", "mysql+pymysql://", "postgresql://"]),
    )
)
def test_opening_any_url_on_a_closed_port_fails_in_one_line_without_the_password(
    case: tuple[str, str, str],
) -> None:
    url, password, written = case
    with pytest.raises(TunerError) as error:
        open_storage(url)
    assert_hidden(str(error.value), password, written)
    assert "\n" not in str(error.value)
