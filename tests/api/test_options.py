"""Option records: one declaration per option, from which the CLI, the API and the argv of
spawned workers derive; bounds checked once, as one line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import typer
from rich.markup import escape

import tuner
from tuner.api import (
    DashboardOptions,
    LaunchOptions,
    Options,
    ReportOptions,
    WorkerOptions,
    declaration,
)
from tuner.api._local_workers import worker_command
from tuner.cli import app
from tuner.errors import TunerError

RECORDS = (WorkerOptions, LaunchOptions, ReportOptions, DashboardOptions)
BOUNDED = [
    (record, spec)
    for record in RECORDS
    for spec in dataclasses.fields(record)
    if declaration(spec).minimum is not None or declaration(spec).maximum is not None
]


def _click(command: str) -> typer.core.TyperCommand:
    return typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("record", "spec"), BOUNDED, ids=[f"{r.__name__}.{s.name}" for r, s in BOUNDED]
)
def test_every_bound_is_checked_once_as_one_line(
    record: type[Options], spec: dataclasses.Field[object]
) -> None:
    declared = declaration(spec)
    flag = declared.flag_of(spec.name)
    if declared.minimum is not None:
        with pytest.raises(TunerError, match=f"^{flag} must be at least {declared.minimum}, got"):
            record(**{spec.name: declared.minimum - 1})
        record(**{spec.name: declared.minimum})
    if declared.maximum is not None:
        with pytest.raises(TunerError, match=f"^{flag} must be at most {declared.maximum}, got"):
            record(**{spec.name: declared.maximum + 1})
        record(**{spec.name: declared.maximum})


def test_choices_are_checked() -> None:
    with pytest.raises(TunerError, match=r"^unknown --trainer 'bogus'; choose one of grid"):
        WorkerOptions(trainer="bogus")
    with pytest.raises(TunerError, match=r"^unknown --backend 'torch'"):
        WorkerOptions(backend="torch")


@pytest.mark.parametrize("command", ["launch", "worker", "report", "dashboard", "status"])
def test_cli_flags_take_the_declared_defaults_and_help(command: str) -> None:
    fields = {spec.name: spec for record in RECORDS for spec in dataclasses.fields(record)}
    checked = 0
    for parameter in _click(command).params:
        spec = fields.get(parameter.name or "")
        if spec is None or (command, parameter.name) == ("worker", "study_name"):
            continue  # the variant and study selectors
        assert parameter.default == spec.default, parameter.name
        assert declaration(spec).flag_of(spec.name) in parameter.opts
        # The declared help, as text: rich would read "[jax]" as markup, so it is escaped.
        assert parameter.help == escape(declaration(spec).help)  # type: ignore[attr-defined]
        checked += 1
    assert checked >= 1


def test_spawned_workers_get_exactly_the_forwarded_options() -> None:
    options = WorkerOptions(
        storage="sqlite:///secret.db",
        heartbeat_interval=7,
        max_attempts=2,
        max_stale_attempts=9,
        gpu=1,
        trainer="packed",
        pack=5,
        backend="jax",
        mix_backends=True,
    )
    argv = worker_command(["a", "b"], options, threads=3, count=4)
    assert "secret" not in " ".join(argv)  # the storage travels in the environment
    parsed = _click("worker").make_context("worker", argv[argv.index("worker") + 1 :]).params
    rebuilt = WorkerOptions.take(parsed)
    expected = dataclasses.replace(options, storage=None, threads=3, expected_workers=4, live=False)
    assert rebuilt == expected
    assert parsed["study_name"] == ["a", "b"]


def test_api_refuses_an_unknown_option_naming_it(tmp_path: Path) -> None:
    with pytest.raises(TunerError, match=r"^unknown option bogus; known options: .*pack"):
        tuner.launch("2layer", storage=f"sqlite:///{tmp_path / 'x.db'}", bogus=1)
    with pytest.raises(TunerError, match=r"^unknown option pack;"):
        tuner.report(storage=f"sqlite:///{tmp_path / 'x.db'}", pack=3)


def test_api_docstrings_list_the_declared_options() -> None:
    for function, record in ((tuner.launch, LaunchOptions), (tuner.work, WorkerOptions)):
        for spec in dataclasses.fields(record):
            if not declaration(spec).hidden:
                assert f"{spec.name}: {declaration(spec).help}" in (function.__doc__ or "")


def test_non_finite_numbers_are_refused() -> None:
    for value in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(TunerError, match=r"^--alpha must be a finite number, got"):
            ReportOptions(alpha=value)


def test_an_out_folder_that_cannot_be_created_is_refused(tmp_path: Path) -> None:
    from tuner.api._report import check_writable_folder

    with pytest.raises(TunerError, match=r"^--out /proc/tuner-out: cannot write there"):
        check_writable_folder(Path("/proc/tuner-out"), "--out")
    check_writable_folder(tmp_path / "new" / "reports", "--out")
    assert not (tmp_path / "new").exists()  # tried, and nothing left behind
