#!/bin/bash
# The official postgres image's contract, for the Debian-built stand-in: on first start
# (empty $PGDATA) create a cluster whose superuser is $POSTGRES_USER (default postgres) with
# password $POSTGRES_PASSWORD (required), create $POSTGRES_DB (default: the user's name),
# trust local socket connections and ask every TCP client for a scram-sha-256 password;
# then run the server as the postgres user, as PID 1. The password is never printed.
set -euo pipefail

if [ "$#" -eq 0 ] || [ "${1:0:1}" = "-" ]; then
    set -- postgres "$@"
fi

if [ "$1" = "postgres" ] && [ "$(id -u)" = "0" ]; then
    install -d -o postgres -g postgres -m 700 "$PGDATA"
    install -d -o postgres -g postgres -m 3777 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
fi

if [ "$1" = "postgres" ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "error: the database is uninitialized and POSTGRES_PASSWORD is not set" >&2
        exit 1
    fi
    user="${POSTGRES_USER:-postgres}"
    db="${POSTGRES_DB:-$user}"
    initdb --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 -D "$PGDATA" >/dev/null
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    if [ "$db" != "postgres" ]; then
        pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
        psql -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres --set db="$db" -q \
            <<<'CREATE DATABASE :"db";'
        pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    fi
    echo "PostgreSQL init process complete; ready for start up."
fi

exec "$@"
