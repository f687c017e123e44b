#!/usr/bin/env bash
# Mirrors the official redis image entrypoint: flags or a *.conf as the first
# argument imply redis-server, root drops to the redis user, and protected
# mode is turned off unless the config decides, because Docker networking
# makes every client look non-local.
set -euo pipefail

[ "$#" -gt 0 ] || set -- redis-server
if [ "${1:0:1}" = '-' ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi

if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

if [ "$1" = 'redis-server' ]; then
    protected=1
    config=
    if [ -f "${2:-}" ]; then
        config="$2"
        if grep -q '^protected-mode' "$config"; then
            protected=
        fi
    fi
    if [ -n "$protected" ]; then
        shift
        if [ -n "$config" ]; then
            shift
            set -- redis-server "$config" --protected-mode no "$@"
        else
            set -- redis-server --protected-mode no "$@"
        fi
    fi
    umask 0077
fi

exec "$@"
