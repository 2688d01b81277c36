"""CLI numbers at the boundary: any value either makes a valid record or is refused in
one line naming the flag; none reaches the work behind it."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from tuner.api import (
    DashboardOptions,
    LaunchOptions,
    Options,
    ReportOptions,
    WorkerOptions,
    declaration,
)
from tuner.errors import TunerError

RECORDS = (WorkerOptions, LaunchOptions, ReportOptions, DashboardOptions)
NUMERIC = [
    (record, spec)
    for record in RECORDS
    for spec in dataclasses.fields(record)
    if declaration(spec).minimum is not None
]
NUMBERS = st.one_of(
    st.integers(-(10**12), 10**12),
    st.floats(-1e12, 1e12, allow_nan=False),
    st.sampled_from([0, -1, 2**63, 10**100]),
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(NUMERIC), NUMBERS)
def test_every_number_is_accepted_within_its_bounds_or_refused_naming_the_flag(
    field: tuple[type[Options], dataclasses.Field[object]], value: float
) -> None:
    record, spec = field
    declared = declaration(spec)
    if isinstance(value, float) and spec.type in ("int", "int | None"):
        value = int(value)
    try:
        made = record(**{spec.name: value})
    except TunerError as error:
        message = str(error)
        assert message.startswith(declared.flag_of(spec.name) + " must be at ")
        assert "\n" not in message
        assert not (declared.minimum <= value <= (declared.maximum or float("inf")))
        return
    assert declared.minimum <= getattr(made, spec.name) <= (declared.maximum or float("inf"))
