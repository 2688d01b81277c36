"""The notebook-facing tables: HTML (escaped), records and frames of status and variants."""

from __future__ import annotations

import datetime
import io

from rich.console import Console

from tuner.reporting import StatusTable, StudyStatus, VariantTable
from tuner.reporting._html import table
from tuner.reporting._status import RunningTrial
from tuner.study import BUILTIN_STUDIES_DIR, load_definitions


def status(name: str, **changes: object) -> StudyStatus:
    fields = {
        "name": name,
        "grid_size": 9,
        "complete": 4,
        "running": [RunningTrial(7, "l1=8 l2=4", "host/12", datetime.datetime(2024, 1, 1))],
        "waiting": 4,
        "failed_attempts": 1,
        "last_failure": "stale heartbeat",
        "best_value": 0.91234,
        "best_units": "l1=8 l2=4",
        "mean_trial_seconds": 10.0,
    }
    return StudyStatus(**{**fields, **changes})


def test_cells_are_escaped() -> None:
    html = table(["<a>"], [["x & <script>"]], caption="1 < 2")
    assert "<script>" not in html
    assert "<td>x &amp; &lt;script&gt;</td>" in html
    assert "<caption>1 &lt; 2</caption>" in html and "<th>&lt;a&gt;</th>" in html


def test_status_table_html_and_records() -> None:
    statuses = StatusTable([status("nine"), status("done", complete=9, running=[], waiting=0)])
    html = statuses._repr_html_()
    assert "<td>nine</td><td>9</td><td>4</td><td>1</td><td>4</td><td>1</td>" in html
    assert "<td>0.9123 (l1=8 l2=4)</td>" in html
    assert "<b>nine</b>: trial 7 [l1=8 l2=4] on host/12" in html
    assert "<b>nine</b>: last failure: stale heartbeat" in html
    records = statuses.to_records()
    assert [r["eta_seconds"] for r in records] == [50.0, 0.0]  # 5 left, 1 worker, 10 s each
    assert list(statuses.to_frame()["study"]) == ["nine", "done"]
    assert statuses[1].name == "done" and len(statuses[:1]) == 1


def test_status_table_renders_like_tuner_status() -> None:
    buffer = io.StringIO()
    StatusTable([status("nine")]).render(Console(file=buffer, width=150))
    text = buffer.getvalue()
    assert "tuner studies" in text and "0.9123 (l1=8 l2=4)" in text
    assert "nine: trial 7 [l1=8 l2=4] on host/12" in text


def test_variant_table_of_the_bundled_studies() -> None:
    variants = VariantTable(load_definitions(BUILTIN_STUDIES_DIR))
    assert variants["2layer"].grid_size == 9
    frame = variants.to_frame()
    assert frame.loc["5layer", "hidden_layers"] == 5
    assert frame.loc["2layer-no-bn", "regularisation"] == "Dropout only"
    assert variants.protocols() == [
        "protocol (all variants): 20 epochs, batch 120, 3-fold CV, adam lr 0.001"
    ]
    buffer = io.StringIO()
    variants.render(Console(file=buffer, width=200))
    assert "{256,328,512} x {32,64,128}" in buffer.getvalue()
    assert "<td>{256,328,512} x {32,64,128}</td>" in variants._repr_html_()


def test_status_counts_interruptions_apart_and_forgets_completed_points(
    tmp_path, studies_dir
) -> None:
    import optuna
    from optuna.trial import TrialState

    from tests.helpers import make_study
    from tuner.reporting import study_status
    from tuner.storages import open_storage
    from tuner.study import schema

    url = f"sqlite:///{tmp_path}/s.db"
    make_study(url, studies_dir)
    storage = open_storage(url)
    study = optuna.load_study(study_name="tiny", storage=storage)

    def attempt(grid_id: int, reason: str | None, interrupted: bool = False) -> None:
        trial = study.ask()
        storage.set_trial_system_attr(trial._trial_id, schema.GRID_ID, grid_id)
        if reason is None:
            study.tell(trial, 0.5)
            return
        storage.set_trial_system_attr(trial._trial_id, schema.FAIL_REASON, reason)
        storage.set_trial_system_attr(trial._trial_id, schema.INTERRUPTED, interrupted)
        study.tell(trial, state=TrialState.FAIL)

    given_back = "interrupted by SIGINT; point will be re-run"
    attempt(0, given_back, interrupted=True)
    attempt(0, None)  # resumed and complete: its interruption is history
    attempt(1, given_back, interrupted=True)  # still open: waits to be re-run
    attempt(2, "ValueError: boom")
    shown = study_status(storage, study)
    assert (shown.failed_attempts, shown.interrupted) == (1, 1)
    assert shown.last_failure == "ValueError: boom"
    assert shown.failed_cell == "1 (+1 given back)"
    assert status("x", interrupted=0).failed_cell == "1"
