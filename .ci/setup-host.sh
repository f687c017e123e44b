#!/usr/bin/env bash
# Prepare a Debian bookworm host (run as root) for the real-Docker test suite.
# Idempotent: safe to run on a fresh CI machine and on a host where dockerd is
# already up.
set -euo pipefail

log() { printf '[setup-host] %s\n' "$*"; }
die() { printf '[setup-host] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"

PACKAGES=(docker.io debootstrap nginx openssl postgresql-client redis-tools ca-certificates testssl.sh restic openssh-client
          python3-venv git curl
          # The swarm layer (tests/swarm): a registry, network namespaces and nsenter, iptables.
          docker-registry iproute2 util-linux iptables)

missing=()
for p in "${PACKAGES[@]}"; do
    # dpkg-query exits 0 for removed-but-configured packages too, so check the
    # status string rather than the exit code.
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    log "all packages already installed"
fi

# docker-registry's postinst may start a system registry on :5000 (systemd hosts); the swarm tests
# run their own instance on an address of their own bridge and never talk to that one.

# Note: on hosts with systemd the nginx package's postinst starts a host nginx
# on port 80. The tests only run the binary (`nginx -t`, private instances on
# free ports), so that service is irrelevant to them and left as the distro
# configured it.

if docker info >/dev/null 2>&1; then
    log "dockerd already reachable"
else
    log "starting dockerd (log: /var/log/dockerd-ci.log)"
    # setsid so the daemon survives this script's process group ending.
    setsid dockerd >>/var/log/dockerd-ci.log 2>&1 < /dev/null &
    dockerd_pid=$!
    for _ in $(seq 1 60); do
        if docker info >/dev/null 2>&1; then
            break
        fi
        if ! kill -0 "$dockerd_pid" 2>/dev/null; then
            tail -n 30 /var/log/dockerd-ci.log >&2 || true
            die "dockerd exited during startup; see /var/log/dockerd-ci.log"
        fi
        sleep 1
    done
    if ! docker info >/dev/null 2>&1; then
        tail -n 30 /var/log/dockerd-ci.log >&2 || true
        die "dockerd did not answer within 60 s; see /var/log/dockerd-ci.log"
    fi
    log "dockerd is up"
fi

log "docker server version: $(docker version --format '{{.Server.Version}}')"
log "done"
