"""Commands that never train must never load a deep-learning framework.

`tuner status` and `tuner --help` are what people run beside busy workers, and
TensorFlow alone takes seconds and hundreds of MB to import. Each case runs the real
command in a fresh interpreter and inspects ``sys.modules`` at exit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import tuner_environment

HEAVY = ("tensorflow", "keras", "jax", "torch", "matplotlib")

PROBE = """
import atexit, sys
from tuner.cli import main

def report():
    heavy = sorted(m for m in {heavy!r} if m in sys.modules)
    sys.__stderr__.write("HEAVY=" + ",".join(heavy) + "\\n")

atexit.register(report)
sys.argv = ["tuner", *{argv!r}]
main()
"""


def loaded_heavy_modules(argv: list[str], cwd: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY, argv=argv)],
        cwd=cwd,
        env=tuner_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    marker = [line for line in result.stderr.splitlines() if line.startswith("HEAVY=")]
    assert marker, result.stderr
    return [name for name in marker[-1][len("HEAVY=") :].split(",") if name]


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["variants"],
        ["status", "--storage", "sqlite:///status.db"],
        ["launch", "--help"],
    ],
)
def test_command_imports_no_framework(argv: list[str], tmp_path: Path) -> None:
    if argv[0] == "status":
        # A real storage with a study in it, so status does its whole job.
        import optuna

        optuna.create_study(storage=f"sqlite:///{tmp_path / 'status.db'}", study_name="other")
    assert loaded_heavy_modules(argv, tmp_path) == []


def test_import_tuner_packages_loads_no_framework() -> None:
    code = (
        "import sys\n"
        "import tuner, tuner.study, tuner.data, tuner.storages, tuner.scheduling\n"
        "import tuner.api, tuner.reporting, tuner.training, tuner.cli\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_import_tuner_lists_the_api_and_loads_no_framework() -> None:
    """``help(tuner)`` shows the whole API, which loads neither TensorFlow nor matplotlib."""
    code = (
        "import pydoc, sys\n"
        "import tuner\n"
        "before = sorted(m for m in sys.modules if m.startswith('tuner.'))\n"
        "text = pydoc.render_doc(tuner, renderer=pydoc.plaintext)\n"
        "api = [n for n in tuner.__all__ if n != '__version__']\n"
        "missing = [n for n in api if n + '(' not in text and 'class ' + n not in text]\n"
        f"print(before, missing, sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # Importing tuner itself loads nothing of it; help() then loads every name, lightly.
    assert result.stdout.strip() == "[] [] []"


def test_reporting_imports_no_training_module() -> None:
    """Reporting renders stored records: every name it offers loads without training code."""
    code = (
        "import sys, tuner.reporting as r\n"
        "for name in r.__all__: getattr(r, name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('tuner.training')"
        f" or m.split('.')[0] in {HEAVY[:4]!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_no_module_imports_another_packages_private_module() -> None:
    """Packages talk through their ``__init__``: ``tuner.a`` never imports ``tuner.b._x``."""
    import ast

    package_root = Path(__file__).resolve().parents[1] / "tuner"
    crossings = []
    for path in package_root.rglob("*.py"):
        own = path.relative_to(package_root).parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                parts = name.split(".")
                foreign = len(parts) > 2 and parts[:1] == ["tuner"] and parts[1] != own
                if foreign and any(part.startswith("_") for part in parts[2:]):
                    crossings.append(f"{path.relative_to(package_root)}: {name}")
    assert crossings == []
