"""The reporter on a small completed study, with real TensorFlow and real SQLite."""

from __future__ import annotations

import csv
import json
import shutil
import struct
import subprocess
import urllib.request
from pathlib import Path

import optuna
import pytest

from tests.helpers import fetch, free_port, run_tuner, serving_dashboard
from tuner.reporting._verdict import WORDS
from tuner.study.schema import FINAL_FIT


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A tiny 3-point study launched with --no-report, then reported."""
    import numpy as np

    from tests.helpers import TINY_STUDY, synthetic_images

    root = tmp_path_factory.mktemp("report")
    studies = root / "studies"
    studies.mkdir()
    (studies / "tiny.toml").write_text(TINY_STUDY)
    x_train, y_train = synthetic_images(300, seed=1)
    x_test, y_test = synthetic_images(100, seed=2)
    npz = root / "data.npz"
    np.savez(npz, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    launched = run_tuner(
        "launch",
        "--variant",
        "tiny",
        "--studies",
        str(studies),
        "--dataset",
        str(npz),
        "--epochs",
        "3",
        "--no-report",
        cwd=root,
    )
    assert launched.returncode == 0, launched.stderr
    assert not (root / "reports").exists()
    first = run_tuner("report", "--out", str(root / "out"), cwd=root)
    assert first.returncode == 0, first.stderr
    return {"root": root, "out": root / "out", "first": first}


def study(root: Path) -> optuna.Study:
    return optuna.load_study(study_name="tiny", storage=f"sqlite:///{root / 'tuner.db'}")


def test_report_files_exist_and_pictures_are_real(reported: dict) -> None:
    out: Path = reported["out"]
    for name in (
        "report.html",
        "report.md",
        "comparison.csv",
        "comparison.json",
        "comparison.png",
        "tiny/final.keras",
    ):
        assert (out / name).is_file(), name
    for picture in ("tiny/loss.png", "tiny/weights.png", "tiny/grid.png", "comparison.png"):
        width, height = png_size(out / picture)
        assert width >= 400 and height >= 300
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4  # self-contained
    assert "<h2>tiny</h2>" in html


def test_csv_numbers_equal_the_stored_values(reported: dict) -> None:
    root: Path = reported["root"]
    with open(reported["out"] / "comparison.csv") as handle:
        (row,) = list(csv.DictReader(handle))
    stored = study(root)
    best = stored.best_trial
    fit = stored.user_attrs[FINAL_FIT]
    assert row["variant"] == "tiny"
    assert row["best_units"] == f"{best.params['l1']}-{best.params['l2']}"
    assert float(row["cv_accuracy_mean"]) == best.value
    assert float(row["cv_accuracy_std"]) == best.user_attrs["accuracy_std"]
    assert float(row["test_accuracy"]) == fit["test_accuracy"]
    assert float(row["test_loss"]) == fit["test_loss"]
    assert float(row["final_train_loss"]) == fit["history"]["loss"][-1]
    assert row["verdict"] in set(WORDS)
    # A real short run judged by the stated rule, which the report says in words.
    from tuner.reporting import judge

    assert row["verdict"] == judge(fit["history"]["loss"], fit["history"]["val_loss"]).word
    assert (
        "Verdict rule: over-fits: validation loss rose more than 10%"
        in (reported["out"] / "report.md").read_text()
    )
    assert row["regularisation"] == "BatchNorm + Dropout"
    assert len(fit["history"]["val_loss"]) == 3
    assert 0.0 <= fit["test_accuracy"] <= 1.0
    rows = json.loads((reported["out"] / "comparison.json").read_text())
    assert rows[0]["test_accuracy"] == fit["test_accuracy"]
    markdown = (reported["out"] / "report.md").read_text()
    assert f"{best.value:.4f} ± {best.user_attrs['accuracy_std']:.4f}" in markdown


def test_second_report_does_not_retrain_and_refit_does(reported: dict) -> None:
    root: Path = reported["root"]
    assert "final fit of trial" in reported["first"].stdout
    before = study(root).user_attrs[FINAL_FIT]
    again = run_tuner("report", "--out", str(root / "again"), cwd=root)
    assert again.returncode == 0, again.stderr
    assert "final fit of trial" not in again.stdout
    assert study(root).user_attrs[FINAL_FIT] == before
    refit = run_tuner(
        "report", "--refit", "--variant", "tiny", "--out", str(root / "refit"), cwd=root
    )
    assert refit.returncode == 0, refit.stderr
    assert "final fit of trial" in refit.stdout
    assert study(root).user_attrs[FINAL_FIT]["seconds"] != before["seconds"]


def test_a_model_path_read_from_storage_never_copies_a_file_outside_the_artifacts(
    reported: dict, tmp_path: Path
) -> None:
    root: Path = reported["root"]
    secret = tmp_path / "secret"
    secret.write_text("private key")
    secret.chmod(0o600)
    tampered = study(root)
    stored = tampered.user_attrs[FINAL_FIT]
    tampered.set_user_attr(FINAL_FIT, {**stored, "model_path": str(secret)})
    try:
        result = run_tuner("report", "--out", str(tmp_path / "out"), cwd=root)
        assert result.returncode == 0, result.stderr
        assert not (tmp_path / "out" / "tiny" / "final.keras").exists()
        copies = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
        assert all(p.read_bytes() != b"private key" for p in copies)
    finally:
        study(root).set_user_attr(FINAL_FIT, stored)


def test_pictures_are_attached_as_dashboard_artifacts(reported: dict) -> None:
    root: Path = reported["root"]
    metas = optuna.artifacts.get_all_artifact_meta(study(root))
    names = sorted(meta.filename for meta in metas)
    assert {"loss.png", "weights.png", "grid.png", "final_fit.json"} <= set(names)
    store = root / "tuner.db.artifacts"
    for meta in metas:
        assert (store / meta.artifact_id).is_file()


def test_dashboard_serves_the_study(reported: dict) -> None:
    argv = ["dashboard", "--port", str(free_port())]
    with serving_dashboard(argv, cwd=reported["root"]) as base:
        body = fetch(f"{base}/api/studies")
        assert '"study_name": "tiny"' in body
        study_id = json.loads(body)["study_summaries"][0]["study_id"]
        detail = json.loads(fetch(f"{base}/api/studies/{study_id}"))
        assert {a["filename"] for a in detail["artifacts"]} >= {"loss.png", "weights.png"}
        artifact = detail["artifacts"][0]["artifact_id"]
        with urllib.request.urlopen(f"{base}/artifacts/{study_id}/{artifact}") as reply:
            assert reply.status == 200 and len(reply.read()) > 100


def test_report_of_unknown_variant_is_clean(reported: dict) -> None:
    result = run_tuner("report", "--variant", "nope", cwd=reported["root"])
    assert result.returncode == 2
    assert "no study named 'nope'" in result.stderr and "tiny" in result.stderr


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium not installed (.ci/run does)")
def test_dashboard_page_shows_the_study_in_headless_chromium(
    reported: dict, tmp_path: Path
) -> None:
    argv = ["dashboard", "--port", str(free_port())]
    with serving_dashboard(argv, cwd=reported["root"]) as base:
        page = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={tmp_path / 'chromium'}",
                "--virtual-time-budget=15000",
                "--dump-dom",
                f"{base}/dashboard",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert "tiny" in page.stdout, page.stderr[-2000:]


def test_intervals_and_ties_equal_those_recomputed_from_the_stored_fold_scores(
    reported: dict,
) -> None:
    from scipy import stats

    import tuner

    root: Path = reported["root"]
    trials = sorted(
        study(root).get_trials(states=(optuna.trial.TrialState.COMPLETE,)),
        key=lambda t: (-t.value, t.number),
    )
    scores = [t.user_attrs["fold_accuracies"] for t in trials]
    k = len(scores[0])

    def interval(values: list[float]) -> tuple[float, float]:
        mean, variance = sum(values) / k, stats.tvar(values)
        half = stats.t.ppf(0.975, k - 1) * ((1 / k + 1 / (k - 1)) * variance) ** 0.5
        return mean - half, mean + half

    with open(reported["out"] / "comparison.csv") as handle:
        (row,) = list(csv.DictReader(handle))
    low, high = interval(scores[0])
    # Tables show the interval cut to accuracy's range; the trial records the t interval.
    assert float(row["cv_accuracy_ci_low"]) == pytest.approx(max(low, 0.0))
    assert float(row["cv_accuracy_ci_high"]) == pytest.approx(min(high, 1.0))
    assert trials[0].user_attrs["accuracy_interval"] == pytest.approx([low, high])

    frame = tuner.load_results("tiny", storage=f"sqlite:///{root / 'tuner.db'}").to_frame()
    for trial, values in zip(trials, scores, strict=True):
        shown = frame[frame["trial"] == trial.number].iloc[0]
        low, high = interval(values)
        assert (shown["cv_accuracy_ci_low"], shown["cv_accuracy_ci_high"]) == pytest.approx(
            (max(low, 0.0), min(high, 1.0))
        )
    # Ties: Holm over the paired corrected tests against the best, recomputed here.
    raw = []
    for other in scores[1:]:
        d = [a - b for a, b in zip(scores[0], other, strict=True)]
        mean, variance = sum(d) / k, stats.tvar(d)
        t = mean / ((1 / k + 1 / (k - 1)) * variance) ** 0.5 if variance else float("inf")
        raw.append(2 * stats.t.sf(abs(t), k - 1))
    order = sorted(range(len(raw)), key=raw.__getitem__)
    adjusted, running = [0.0] * len(raw), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(raw) - rank) * raw[index]))
        adjusted[index] = running
    tied = {
        "-".join(map(str, (t.params["l1"], t.params["l2"])))
        for t, p in zip(trials[1:], adjusted, strict=True)
        if p >= 0.05
    }
    assert set(row["tied_with_best"].split()) == tied
    assert list(frame.sort_values("rank")["tied_with_best"])[1:] == [p >= 0.05 for p in adjusted]
    markdown = (reported["out"] / "report.md").read_text()
    assert "## What is significant" in markdown and "tiny: best " in markdown
