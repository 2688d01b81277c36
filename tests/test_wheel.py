"""The wheel a user installs: built from this checkout, installed without ``-e`` in a fresh
virtual environment, run from an empty folder far from the checkout.

An editable install reads the checkout, so it hides anything the wheel forgot (the seed
study definitions were once left out). Marker ``wheel``: ``.ci/run`` runs it; it installs
tuner's dependencies into a new environment (from pip's cache when warm).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import synthetic_images

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parents[1]
SEED_VARIANTS = {
    "2layer",
    "2layer-no-bn",
    "2layer-no-dropout",
    "3layer",
    "3layer-no-bn",
    "3layer-no-dropout",
    "5layer",
}


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stderr}"
    return result.stdout


def test_installed_wheel_has_the_seed_variants_and_launches(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    env = {k: v for k, v in os.environ.items() if k not in ("TUNER_STUDIES", "TUNER_STORAGE")}
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(dist)]
    _run(build, tmp_path, env)
    (wheel,) = dist.glob("tuner-*.whl")
    packaged = {Path(name).name for name in zipfile.ZipFile(wheel).namelist()}
    assert {f"{variant}.toml" for variant in SEED_VARIANTS} <= packaged

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", str(wheel)], tmp_path, env)

    empty = tmp_path / "empty"
    empty.mkdir()
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "200"
    listed = _run([str(venv / "bin" / "tuner"), "variants"], empty, env)
    assert all(f" {variant} " in listed for variant in SEED_VARIANTS), listed
    where = _run([str(python), "-c", "import tuner; print(tuner.__file__)"], empty, env)
    assert str(venv) in where and str(ROOT) not in where  # the wheel, not the checkout

    x_train, y_train = synthetic_images(300, seed=1)
    x_test, y_test = synthetic_images(100, seed=2)
    np.savez(empty / "data.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    launch = ["launch", "--variant", "2layer", "--dataset", "data.npz", "--epochs", "1"]
    _run([str(venv / "bin" / "tuner"), *launch, "--no-report"], empty, env)
    count = (
        "import optuna; s = optuna.load_study(study_name='2layer', storage='sqlite:///tuner.db');"
        "print(sum(t.state.name == 'COMPLETE' for t in s.trials))"
    )
    assert _run([str(python), "-c", count], empty, env).strip() == "9"
    written = {path.name for path in empty.iterdir()}
    assert "tuner.db" in written and "reports" not in written  # --no-report honoured
