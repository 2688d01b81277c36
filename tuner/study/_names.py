"""Study names: what tuner accepts as one, and how any name is shown safely.

A study name becomes a folder of the report (``reports/NAME/``), a title in terminals,
pictures and HTML, and an argument of the workers ``launch`` starts. So tuner creates
studies only under names that are safe in all of these (letters, digits, ``_ . + -``,
not starting with a dot), and a study in a shared storage under any other name, which
tuner did not create, is not treated as a tuner study: it is never listed, reported or
worked, so a hostile name can neither escape the report folder nor break the screen.
"""

from __future__ import annotations

import re

from tuner.errors import TunerError

MAX_NAME_LENGTH = 128
"""Longest study name tuner creates."""
_STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def is_study_name(name: str) -> bool:
    """Whether tuner would create a study under ``name``."""
    return len(name) <= MAX_NAME_LENGTH and _STUDY_NAME.fullmatch(name) is not None


def check_study_name(name: str) -> None:
    """Refuse a name tuner would not create a study under, in one line.

    Raises:
        TunerError: The name is empty, too long, or holds a character other than
            letters, digits and ``_ . + -`` (or starts with one of the last four).
    """
    if not is_study_name(name):
        raise TunerError(
            f"study name {shown(name)} is not allowed: use up to {MAX_NAME_LENGTH} letters, "
            "digits, '_', '.', '+' or '-', starting with a letter or digit"
        )


def shown_name(name: str) -> str:
    """A study name for a table or a title: as is when tuner would create it, else
    quoted and escaped (:func:`shown`)."""
    return name if is_study_name(name) else shown(name)


def inert(text: str) -> str:
    """``text`` read from the storage, for a terminal line: printable characters as they
    are, control characters (ANSI escapes, newlines) written as escapes."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def shown(text: str) -> str:
    """``text`` quoted for a terminal or a log line: control characters (ANSI escapes
    included) and non-ASCII characters escaped, so nothing it holds acts on the screen."""
    return ascii(text)
