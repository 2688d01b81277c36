"""Text read from a user's file, made safe to print: names, values and reader errors.

A column name, a class or a reader's error message comes from the file; printed as it
is, an escape sequence in it would act on the terminal. Everything tuner shows of a
file passes through one of these two functions.
"""

from __future__ import annotations

import re

_PLAIN = re.compile(r"[A-Za-z0-9_.+-]{1,64}")


def shown(text: object) -> str:
    """Quoted, with anything that could act on a terminal escaped (``'a\\x1b[31m'``)."""
    return ascii(str(text))


def plain(text: object) -> str:
    """As is when it is a plain token (``9``, ``setosa``), else :func:`shown`."""
    return str(text) if _PLAIN.fullmatch(str(text)) else shown(text)
