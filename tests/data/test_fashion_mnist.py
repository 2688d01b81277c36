"""The real Fashion-MNIST from Debian's dataset-fashion-mnist: the model must learn."""

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.helpers import run_tuner
from tuner.data import DEBIAN_FASHION_MNIST

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not DEBIAN_FASHION_MNIST.is_dir(),
        reason="needs Debian's dataset-fashion-mnist (installed by .ci/run)",
    ),
]

ONE_POINT = """
description = "the 2layer winner alone"
[model]
batch_norm = true
dropout = 0.5
[grid]
l1 = [512]
l2 = [128]
"""


def test_launch_learns_real_fashion_mnist(tmp_path: Path) -> None:
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "winner.toml").write_text(ONE_POINT)
    result = run_tuner(
        "launch",
        "--variant",
        "winner",
        "--dataset",
        "fashion-mnist",
        "--subset",
        "3000",
        "--epochs",
        "3",
        "--studies",
        str(studies),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="winner", storage=f"sqlite:///{tmp_path / 'tuner.db'}")
    (trial,) = study.get_trials()
    assert trial.state == TrialState.COMPLETE
    # Ten balanced classes: chance is 0.10. A working pipeline gets far beyond it.
    assert trial.value > 0.65
    assert all(accuracy > 0.6 for accuracy in trial.user_attrs["fold_accuracies"])
    history = trial.user_attrs["fold_0"]["history"]
    assert history["loss"][-1] < history["loss"][0]
    assert study.user_attrs["tuner.dataset"] == {
        "source": "fashion-mnist",
        "subset": 3000,
        "seed": 0,
    }
