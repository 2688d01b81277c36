"""Study names at the boundary: any text is either a name tuner creates (safe as a
folder, a title and an argument) or refused in one line; showing any name is inert."""

from __future__ import annotations

import datetime
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from tuner.errors import TunerError
from tuner.reporting import RunningTrial, StudyStatus, render_status
from tuner.study import check_study_name, is_study_name, shown_name

HOSTILE = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        ["../../x", "/abs", "[/x]", "[bold]x", "\x1b[2Jx", "$\\foo$", "<b>x</b>", ".."]
    ),
)


@settings(max_examples=300, deadline=None)
@given(HOSTILE)
def test_a_name_is_accepted_only_if_safe_everywhere_else_refused_in_one_line(name: str) -> None:
    try:
        check_study_name(name)
    except TunerError as error:
        message = str(error)
        assert "\n" not in message and "\x1b" not in message
        assert not is_study_name(name)
        return
    assert is_study_name(name)
    assert name not in ("", ".", "..") and not name.startswith(".")
    assert not set(name) & set("/\\[]<>$&\"' \t\r\n\x1b%")
    assert len(name) <= 128


@settings(max_examples=150, deadline=None)
@given(HOSTILE)
def test_status_shows_any_name_without_markup_or_escapes_acting(name: str) -> None:
    status = StudyStatus(
        name=name,
        grid_size=9,
        complete=1,
        running=[RunningTrial(3, "l1=8 l2=4", "host/1", datetime.datetime(2026, 1, 1), 2, 20, 0.8)],
        waiting=8,
        failed_attempts=0,
        last_failure=None,
        best_value=0.9,
        best_units="l1=8 l2=4",
        mean_trial_seconds=1.0,
    )
    out = io.StringIO()
    render_status(Console(file=out, width=200, force_terminal=True, color_system=None), [status])
    assert "\x1b[2J" not in out.getvalue()
    assert shown_name(name).replace("\\", "") != "" or name == ""


@pytest.mark.parametrize("name", ["[/x]", "\x1b[31mred", "$\\foo$"])
def test_hostile_names_are_shown_escaped(name: str) -> None:
    assert shown_name(name) == ascii(name)
    assert shown_name("2layer") == "2layer"
