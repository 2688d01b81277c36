"""Repeated CV on real Fashion-MNIST: what the report and the API say is significant equals
what SciPy recomputes from the fold scores stored on the trials (bench/repeated_cv_check.py,
here on a smaller slice; the 12,000-image figures are in bench/RESULTS.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import tuner_environment
from tuner.data import DEBIAN_FASHION_MNIST

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not DEBIAN_FASHION_MNIST.is_dir(),
        reason="needs Debian's dataset-fashion-mnist (installed by .ci/run)",
    ),
]

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "repeated_cv_check.py"


def test_intervals_and_ties_of_a_repeated_cv_study_equal_the_scipy_recomputation(
    tmp_path: Path,
) -> None:
    figures = tmp_path / "figures.json"
    checked = subprocess.run(
        [sys.executable, str(SCRIPT), "--subset", "1500", "--epochs", "1", "--json", str(figures)],
        cwd=tmp_path,
        env=tuner_environment(None),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    assert "all equal" in checked.stdout
    result = json.loads(figures.read_text())
    assert result["problems"] == []
    assert (result["repeats"], result["folds"]) == (2, 3)
    points = result["points"]
    assert len(points) == 9  # the whole 2layer grid
    assert points[0]["tied_with_best"] and points[0]["p_vs_best_holm"] == 1.0
    for point in points:
        assert point["low"] < point["mean"] < point["high"]
    # The script's own recomputation is independent of tuner.stats: its tied set comes
    # from the p-values it computed, and the report's sentence names exactly those.
    tied = [p["units"] for p in points[1:] if p["p_vs_best_holm"] >= 0.05]
    assert tied == result["tied"]
    if tied:
        assert result["sentence"].endswith(", ".join(tied))
