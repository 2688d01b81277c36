"""Storage URLs as a careless or hostile user types them: never a password printed,
never a traceback, one line for every refusal."""

from __future__ import annotations

import functools
import string
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tuner.errors import TunerError
from tuner.storages import check_supported, mask_password, parse_url, sqlite_path
from tuner.storages._url import driver_connect_args

SECRET = "TopSecret1"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "postgresql+psycopg://alice:s3cr3t@db.example:5432/tuner",
            "postgresql+psycopg://alice:***@db.example:5432/tuner",
        ),
        # A missing colon: not a URL SQLAlchemy parses, the password is hidden all the same.
        (f"postgresql+psycopg//u:{SECRET}@h/x", "postgresql+psycopg//u:***@h/x"),
        (f"postgresql+psycopg:/u:{SECRET}@h/x", "postgresql+psycopg:***@h/x"),
        # A password holding '@' is hidden up to the last '@' before the host.
        (f"postgresql+psycopg://u:Top@{SECRET}@h/x", "postgresql+psycopg://u:***@h/x"),
        (f"postgresql+psycopg://u:a@b:{SECRET}@h:5432/x", "postgresql+psycopg://u:***@h:5432/x"),
        # Passwords in the query, under any key that names one.
        (
            f"postgresql+psycopg://u@h/x?password={SECRET}&sslmode=require",
            "postgresql+psycopg://u@h/x?password=***&sslmode=require",
        ),
        (f"mysql+pymysql://u@h/x?passwd={SECRET}", "mysql+pymysql://u@h/x?passwd=***"),
        (
            f"mysql+pymysql://u@h/x?charset=utf8&PWD={SECRET}",
            "mysql+pymysql://u@h/x?charset=utf8&PWD=***",
        ),
        (
            f"postgresql+psycopg:///x?host=h&db_password={SECRET}",
            "postgresql+psycopg:///x?host=h&db_password=***",
        ),
        # A malformed port: the URL is still printed without its password.
        (
            f"postgresql+psycopg://u:{SECRET}@h:notaport/db",
            "postgresql+psycopg://u:***@h:notaport/db",
        ),
        ("sqlite:////data/runs@2024:1/tuner.db", "sqlite:////data/runs@2024:1/tuner.db"),
        ("sqlite:///tuner.db", "sqlite:///tuner.db"),
    ],
)
def test_password_is_masked_however_the_url_is_written(url: str, masked: str) -> None:
    assert mask_password(url) == masked


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (f"postgresql+psycopg//u:{SECRET}@h/x", "not a database URL"),
        (f"postgresql+psycopg://u:{SECRET}@h:notaport/db", "port is not a number"),
        (f"postgresql+psycopg://u:{SECRET}@h:99999/db", "port is not a number"),
        (f"postgresql+psycopg://u:Top@{SECRET}@h/x", "%40"),
        (f"mysql+pymysql://u:{SECRET}@@h/x", "%40"),
    ],
)
def test_malformed_url_is_one_line_without_the_password(url: str, reason: str) -> None:
    for use in (parse_url, check_supported, sqlite_path, driver_connect_args):
        with pytest.raises(TunerError) as error:
            use(url)
        message = str(error.value)
        assert reason in message
        assert SECRET not in message
        assert "\n" not in message


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"]
)
def test_sqlite_in_memory_is_refused(url: str) -> None:
    """tuner's workers are other processes: a study in one process's memory is lost."""
    with pytest.raises(TunerError, match="in memory") as error:
        check_supported(url)
    assert "lost" in str(error.value) and "sqlite:///FILE.db" in str(error.value)


# --- Properties: whatever the user, password, host and query, no output holds the password.

NAME = st.text(string.ascii_letters + string.digits, min_size=1, max_size=8)
HOST = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(string.ascii_lowercase),
    st.text(string.ascii_lowercase + string.digits + ".-", max_size=10),
)
# What a careless user pastes: '@', ':', '/', '?', '#', '&', '=', '%' and '+' included.
PASSWORD = st.text(
    string.ascii_letters + string.digits + "@:/?#&=%+!$*-._~ ", min_size=4, max_size=16
)
SCHEME = st.sampled_from(
    [
        "postgresql+psycopg://",
        "mysql+pymysql://",
        "postgresql://",
        "postgresql+psycopg//",
        "mysql+pymysql:/",
        "postgresql+psycopg:",
        "",
    ]
)
PLACE = st.sampled_from(["raw", "quoted", "password=", "passwd=", "pwd=", "my_password="])
PORT = st.one_of(st.none(), st.integers(1, 65535).map(str), st.sampled_from(["x1", "", "99999"]))
EXTRA_QUERY = st.lists(
    st.tuples(st.sampled_from(["sslmode", "charset", "application_name"]), NAME), max_size=2
)


@st.composite
def url_with_password(
    draw: st.DrawFn,
    host: st.SearchStrategy[str] = HOST,
    port_text: st.SearchStrategy[str | None] = PORT,
    scheme: st.SearchStrategy[str] = SCHEME,
) -> tuple[str, str, str]:
    """(url, password, the password as written in the url)."""
    user, password, place = draw(NAME), draw(PASSWORD), draw(PLACE)
    port = draw(port_text)
    netloc_host = draw(host) + (f":{port}" if port is not None else "")
    query = [f"{key}={value}" for key, value in draw(EXTRA_QUERY)]
    if place == "raw":
        written, authority = password, f"{user}:{password}@"
    elif place == "quoted":
        written, authority = quote(password, safe=""), f"{user}:{quote(password, safe='')}@"
    else:
        written, authority = quote_plus(password), f"{user}@"
        query.insert(draw(st.integers(0, len(query))), place + written)
    url = f"{draw(scheme)}{authority}{netloc_host}/{draw(NAME)}"
    if query:
        url += "?" + "&".join(query)
    # The property is about the password: one that also spells the host or user is moot.
    assume(url.count(written) == 1 and (written == password or password not in url))
    return url, password, written


def assert_hidden(text: str, password: str, written: str) -> None:
    assert password not in text, text
    assert written not in text, text


@settings(max_examples=300, deadline=None)
@given(url_with_password())
def test_mask_password_never_shows_the_password(case: tuple[str, str, str]) -> None:
    url, password, written = case
    assert_hidden(mask_password(url), password, written)


@settings(max_examples=200, deadline=None)
@given(url_with_password())
def test_parsing_any_url_fails_only_with_one_line_without_the_password(
    case: tuple[str, str, str],
) -> None:
    url, password, written = case
    for use in (parse_url, check_supported, sqlite_path, driver_connect_args):
        try:
            use(url)
        except TunerError as error:
            assert_hidden(str(error), password, written)
            assert "\n" not in str(error)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60), PASSWORD)
def test_garbage_around_a_password_is_masked_or_refused(prefix: str, password: str) -> None:
    """Arbitrary text before 'user:PASSWORD@host': masked, and parsing raises nothing else."""
    url = f"{prefix}u:{password}@h/db"
    assume(url.count(password) == 1)
    # A password that is a word of the refusal's own advice ('post' of postgresql) is
    # shown by the advice, not leaked.
    assume(all(password not in wording for wording in refusal_wordings()))
    assert password not in mask_password(url)
    try:
        parse_url(url)
    except TunerError as error:
        assert password not in str(error)


@functools.cache
def refusal_wordings() -> tuple[str, ...]:
    """parse_url's refusals of URLs holding no password: their fixed wording."""
    wordings = []
    for url in ("not a url", "postgresql+psycopg://u@h:99999/db"):
        with pytest.raises(TunerError) as refused:
            parse_url(url)
        wordings.append(str(refused.value).replace(url, ""))
    return tuple(wordings)
