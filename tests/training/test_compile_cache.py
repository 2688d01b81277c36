"""XLA's persistent compilation cache: which folder, off, and a second process reading it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_tuner, tuner_environment
from tuner.errors import TunerError
from tuner.training._compile_cache import (
    compile_cache_folder,
    default_compile_cache,
    enable_compile_cache,
)


def test_default_folder_is_the_user_cache() -> None:
    assert default_compile_cache({"XDG_CACHE_HOME": "/var/cache/me"}) == Path(
        "/var/cache/me/tuner/xla"
    )
    # XDG says a relative value is to be ignored, as is an empty one.
    for unset in ({}, {"XDG_CACHE_HOME": ""}, {"XDG_CACHE_HOME": "relative"}):
        assert default_compile_cache(unset) == Path.home() / ".cache" / "tuner" / "xla"


@pytest.mark.parametrize(
    ("value", "environ", "expected"),
    [
        (None, {"XDG_CACHE_HOME": "/c"}, Path("/c/tuner/xla")),
        (None, {"TUNER_COMPILE_CACHE": "/shared/xla", "XDG_CACHE_HOME": "/c"}, Path("/shared/xla")),
        (None, {"TUNER_COMPILE_CACHE": "", "XDG_CACHE_HOME": "/c"}, Path("/c/tuner/xla")),
        (None, {"TUNER_COMPILE_CACHE": "off"}, None),
        ("/mine", {"TUNER_COMPILE_CACHE": "/shared/xla"}, Path("/mine")),
        ("off", {"TUNER_COMPILE_CACHE": "/shared/xla"}, None),
        ("OFF", {}, None),
        ("~/xla", {}, Path.home() / "xla"),
    ],
)
def test_option_then_variable_then_user_cache(
    value: str | None, environ: dict[str, str], expected: Path | None
) -> None:
    assert compile_cache_folder(value, environ) == expected


def test_off_touches_nothing() -> None:
    # 'off' returns before anything is imported or created.
    assert enable_compile_cache("off") is None


def test_a_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(TunerError, match=r"^--compile-cache .*file/xla: cannot create it") as err:
        enable_compile_cache(str(blocker / "xla"))
    assert "\n" not in str(err.value)


def test_choosing_the_folder_imports_no_framework() -> None:
    code = (
        "import sys\n"
        "from tuner.training._compile_cache import compile_cache_folder\n"
        "compile_cache_folder(None)\n"
        "print(sorted(m for m in ('jax', 'tensorflow', 'keras') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


JIT_ONE = """
import sys
import jax, jax.numpy as jnp
from jax import monitoring
from tuner.training import configure_device
hits = []
monitoring.register_event_listener(
    lambda name, **_: hits.append(name) if name.endswith("cache_hits") else None
)
configure_device(compile_cache=sys.argv[1])
print(jax.jit(lambda x: jnp.tanh(x @ x.T).sum())(jnp.ones((64, 32))).block_until_ready())
print("HITS", len(hits))
"""


def test_a_second_process_loads_what_the_first_compiled(tmp_path: Path) -> None:
    pytest.importorskip("jax")
    cache = tmp_path / "xla"
    env = tuner_environment({"KERAS_BACKEND": "jax"})

    def run() -> int:
        result = subprocess.run(
            [sys.executable, "-c", JIT_ONE, str(cache)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return int(result.stdout.split("HITS")[-1])

    assert run() == 0
    entries = [path for path in cache.iterdir() if path.name.endswith("-cache")]
    assert entries, "the first process wrote no entry"
    assert oct(cache.stat().st_mode & 0o777) == oct(0o700)
    assert run() >= 1
    # Nothing new: the second process compiled nothing of its own.
    assert len([p for p in cache.iterdir() if p.name.endswith("-cache")]) == len(entries)


def tiny_jax_launch(studies_dir: Path, data: Path) -> list[str]:
    """``tuner launch`` of the tiny study on JAX (the tests add what they vary)."""
    return [
        "launch",
        *("--variant", "tiny", "--dataset", str(data), "--studies", str(studies_dir)),
        *("--backend", "jax"),
    ]


@pytest.mark.slow
def test_a_second_launch_trains_from_the_cache_the_first_filled(
    tmp_path: Path, studies_dir: Path, synthetic_npz: Path
) -> None:
    pytest.importorskip("jax")
    cache = tmp_path / "xla"
    launch = [
        *tiny_jax_launch(studies_dir, synthetic_npz),
        *("--epochs", "1", "--no-report", "--workers", "2"),
    ]
    first = run_tuner(*launch, "--study-name", "first", "--compile-cache", str(cache), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    written = {p.name for p in cache.iterdir() if p.name.endswith("-cache")}
    assert written
    stamps = {p.name: p.read_bytes() for p in cache.iterdir() if p.name.endswith("-atime")}
    # The variable reaches the workers too (the option was not given this time).
    second = run_tuner(
        *launch, "--study-name", "second", cwd=tmp_path, env={"TUNER_COMPILE_CACHE": str(cache)}
    )
    assert second.returncode == 0, second.stderr
    # Each read of an entry stamps its access time (the cache is size-limited, so LRU).
    read = {
        p.name
        for p in cache.iterdir()
        if p.name.endswith("-atime") and stamps.get(p.name) != p.read_bytes()
    }
    assert len(read) >= len(written) // 2, (len(read), len(written))


def test_launch_refuses_a_cache_it_cannot_write_before_any_work(
    tmp_path: Path, studies_dir: Path, synthetic_npz: Path
) -> None:
    pytest.importorskip("jax")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_tuner(
        *tiny_jax_launch(studies_dir, synthetic_npz),
        *("--compile-cache", str(blocker / "xla")),
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "--compile-cache" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "tuner.db").exists()  # refused before the storage was opened
