#!/usr/bin/env bash
# Minimal re-implementation of the official postgres image entrypoint for the
# parts catalogizer-deploy relies on: POSTGRES_USER/PASSWORD/DB, PGDATA,
# first-start initdb, /docker-entrypoint-initdb.d, then exec postgres "$@".
set -Eeuo pipefail

PG_BIN=/usr/lib/postgresql/15/bin
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"

log() { printf '%s [entrypoint] %s\n' "$(date -u +%FT%TZ)" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

# Like the official image: `docker run img -c foo=bar` means `postgres -c ...`.
[ "$#" -gt 0 ] || set -- postgres
if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi

if [ "$1" != 'postgres' ]; then
    exec "$@"
fi

if [ "$(id -u)" = '0' ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    chown postgres:postgres /var/run/postgresql
    chmod 3777 /var/run/postgresql
    # setpriv execs in place (no fork), so postgres ends up as PID 1 and gets
    # the stop signal directly.
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

# Upstream's file_env (docker-library/postgres 15/alpine3.20/docker-entrypoint.sh): VAR or
# VAR_FILE (never both), the file read whole, VAR_FILE then unset. Run again after the
# privilege drop, as upstream does, so the file must be readable by the postgres user too.
file_env() {
    local var="$1" file_var="${1}_FILE"
    if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
        printf >&2 'error: both %s and %s are set (but are exclusive)\n' "$var" "$file_var"
        exit 1
    fi
    if [ -n "${!file_var:-}" ]; then
        export "$var"="$(<"${!file_var}")"
    fi
    unset "$file_var"
}
file_env POSTGRES_PASSWORD
file_env POSTGRES_USER
file_env POSTGRES_DB
file_env POSTGRES_INITDB_ARGS

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    POSTGRES_USER="${POSTGRES_USER:-postgres}"
    POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != 'trust' ]; then
        die "database is uninitialized and POSTGRES_PASSWORD is not set (POSTGRES_HOST_AUTH_METHOD=trust allows that)"
    fi
    # Upstream's pg_setup_hba_conf: the catch-all host line uses POSTGRES_HOST_AUTH_METHOD,
    # defaulting to the server's password_encryption (scram-sha-256 on 14+).
    auth_host="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"

    log "initializing database cluster in $PGDATA"
    pwfile="$(mktemp)"
    printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
    # Upstream passes no --auth option: initdb's default is `trust` for the local socket AND
    # the 127.0.0.1/::1 host lines (with a warning), unless POSTGRES_INITDB_ARGS says otherwise.
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is word-split on purpose, like upstream
    "$PG_BIN/initdb" --username="$POSTGRES_USER" --pwfile="$pwfile" \
        --encoding=UTF8 --locale=C.UTF-8 \
        ${POSTGRES_INITDB_ARGS:-} -D "$PGDATA" >/dev/null
    rm -f "$pwfile"

    # initdb only writes localhost host lines; containers on the network need
    # a catch-all rule with the same method.
    printf '\nhost all all all %s\n' "$auth_host" >>"$PGDATA/pg_hba.conf"
    printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"

    # Upstream exports PGPASSWORD for the init psql calls ("required for psql when
    # authentication is required for 'local' connections ... e.g. --auth-local=md5").
    export PGPASSWORD="${PGPASSWORD:-${POSTGRES_PASSWORD:-}}"
    # Temporary server reachable only through the unix socket, so clients
    # can't connect before the user's database exists.
    "$PG_BIN/pg_ctl" -D "$PGDATA" -w -o "-c listen_addresses='' -p 5432" start >/dev/null

    psql_cmd=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --no-password)
    if [ "$POSTGRES_DB" != 'postgres' ]; then
        "${psql_cmd[@]}" --dbname postgres --set db="$POSTGRES_DB" >/dev/null <<'SQL'
CREATE DATABASE :"db";
SQL
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh)
                log "running $f"
                # shellcheck disable=SC1090 # user-provided init scripts, sourced like upstream
                . "$f"
                ;;
            *.sql) log "running $f"; "${psql_cmd[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
            *.sql.gz) log "running $f"; gunzip -c "$f" | "${psql_cmd[@]}" --dbname "$POSTGRES_DB" ;;
            *) [ -e "$f" ] && log "ignoring $f" ;;
        esac
    done

    "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
    unset PGPASSWORD
    log "initialization complete; user '$POSTGRES_USER', database '$POSTGRES_DB'"
else
    log "existing database cluster found in $PGDATA; skipping initialization"
fi

shift
exec "$PG_BIN/postgres" "$@"
