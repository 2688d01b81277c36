"""The whole product on Keras' JAX backend, where TensorFlow cannot even be imported."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.helpers import run_tuner
from tuner.study import schema

pytest.importorskip("jax", reason="the JAX backend needs pip install -e '.[jax]'")


@pytest.fixture
def without_tensorflow(tmp_path: Path) -> dict[str, str]:
    """An environment in which `import tensorflow` fails, as on a JAX-only GPU machine."""
    blocked = tmp_path / "blocked" / "tensorflow"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text('raise ImportError("TensorFlow blocked by the test")\n')
    return {"PYTHONPATH": str(blocked.parent)}


@pytest.mark.slow
def test_launch_and_report_on_jax_without_tensorflow(
    tmp_path: Path, studies_dir: Path, synthetic_npz: Path, without_tensorflow: dict[str, str]
) -> None:
    launch = [
        "launch",
        "--variant",
        "tiny",
        "--dataset",
        str(synthetic_npz),
        "--studies",
        str(studies_dir),
        "--epochs",
        "2",
    ]
    result = run_tuner(*launch, cwd=tmp_path, env={**without_tensorflow, "KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'tuner.db'}")
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert {t.user_attrs[schema.BACKEND] for t in trials} == {"jax"}
    assert study.user_attrs[schema.STUDY_BACKEND] == "jax"
    assert max(t.value for t in trials) > 0.3  # it learned
    assert (tmp_path / "reports" / "report.html").is_file()
    assert (tmp_path / "reports" / "tiny" / "final.keras").is_file()
    assert study.user_attrs[schema.FINAL_FIT]["test_accuracy"] > 0.2

    # The study was trained on JAX: TensorFlow may not add to it unless told.
    refused = run_tuner(*launch, "--backend", "tensorflow", cwd=tmp_path)
    assert refused.returncode == 2
    assert "backend (stored jax, now tensorflow" in refused.stderr
    assert "Traceback" not in refused.stderr
    worker = run_tuner("worker", "--backend", "tensorflow", cwd=tmp_path)
    assert worker.returncode == 2
    assert "--mix-backends" in worker.stderr and "KERAS_BACKEND=jax" in worker.stderr
    accepted = run_tuner(*launch, "--backend", "tensorflow", "--mix-backends", cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stderr


def test_unknown_backend_is_one_clear_line(tmp_path: Path) -> None:
    result = run_tuner("worker", "--backend", "theano", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "error: unknown --backend 'theano'; choose one of tensorflow, jax\n"
