#!/usr/bin/env bash
# Sourced by .ci/run (set -euo pipefail active): a throwaway PostgreSQL server on 127.0.0.1 for the
# store tests. Quiet and idempotent: installs postgresql only when missing, reuses a running server.
# Exports INTERVIEW_TEST_POSTGRES_URL (tests create one schema each) and INTERVIEW_REQUIRE_POSTGRES=1.
# Override with INTERVIEW_PG_PORT (default 54329) and INTERVIEW_PG_DIR (default /tmp/interview-coach-pg).

_interview_pg_bin() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)" || true
    [[ -n "$dir" && -x "$dir/pg_ctl" ]] && echo "$dir"
    return 0
}

_interview_pg_start() {
    local port="${INTERVIEW_PG_PORT:-54329}"
    local dir="${INTERVIEW_PG_DIR:-/tmp/interview-coach-pg}"
    local db="interview_test"
    local bin
    bin="$(_interview_pg_bin)"
    if [[ -z "$bin" ]]; then
        if [[ "$(id -u)" -ne 0 ]]; then
            echo "postgres.sh: PostgreSQL is not installed and this is not root (apt-get install postgresql)" >&2
            return 1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null 2>&1
        bin="$(_interview_pg_bin)"
        [[ -n "$bin" ]] || { echo "postgres.sh: no pg_ctl after installing postgresql" >&2; return 1; }
    fi
    # The server refuses to run as root: run it as the postgres user when we are root.
    local -a as_pg=()
    if [[ "$(id -u)" -eq 0 ]]; then
        as_pg=(runuser -u postgres --)
    fi
    if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1; then
        if [[ ! -s "$dir/PG_VERSION" ]]; then
            rm -rf "$dir"
            mkdir -p "$dir"
            [[ "$(id -u)" -eq 0 ]] && chown postgres: "$dir"
            chmod 700 "$dir"
            "${as_pg[@]}" "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
        fi
        # Throwaway test server: no fsync; enough connections for the 50-thread test.
        "${as_pg[@]}" "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 -s \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start \
            >/dev/null || { tail -n 20 "$dir/server.log" >&2; return 1; }
    fi
    local psql=("$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -tA)
    if [[ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != "1" ]]; then
        "${psql[@]}" -c "CREATE DATABASE $db" >/dev/null
    fi
    export INTERVIEW_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/$db"
    export INTERVIEW_REQUIRE_POSTGRES=1
}

_interview_pg_start
unset -f _interview_pg_start _interview_pg_bin
