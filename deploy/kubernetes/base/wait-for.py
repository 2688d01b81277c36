"""Wait, in an init container, until PostgreSQL answers (`database`) or until the launcher
has created the studies the workers will join (`studies`). Reads TUNER_STORAGE (never
printed: it holds the password) and TUNER_VARIANTS ("all" or one variant name). Exits 0
when the condition holds; gives up after WAIT_SECONDS (default one hour) with exit 1."""

import os
import sys
import time

import sqlalchemy as sa

STUDIES = sa.text(
    "SELECT s.study_name FROM studies s JOIN study_user_attributes a"
    " ON a.study_id = s.study_id WHERE a.key = 'tuner.definition'"
)


def ready(engine: sa.engine.Engine, what: str) -> bool:
    with engine.connect() as connection:
        if what == "database":
            return connection.execute(sa.text("SELECT 1")).scalar() == 1
        have = {row[0] for row in connection.execute(STUDIES)}
    want = set(os.environ.get("TUNER_VARIANTS", "all").split()) - {"all"}
    return bool(have) and want <= have


def main() -> int:
    what = sys.argv[1] if len(sys.argv) > 1 else "database"
    engine = sa.create_engine(os.environ["TUNER_STORAGE"], pool_pre_ping=True)
    deadline = time.monotonic() + float(os.environ.get("WAIT_SECONDS", "3600"))
    while time.monotonic() < deadline:
        try:
            if ready(engine, what):
                print(f"wait-for: {what} ready", flush=True)
                return 0
            reason = "not yet"
        except sa.exc.SQLAlchemyError as error:
            reason = type(error.orig or error).__name__
        print(f"wait-for: {what}: {reason}; again in 3 s", flush=True)
        time.sleep(3)
    print(f"wait-for: {what} not ready in time", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
