#!/usr/bin/env bash
# Runs the test suite, preparing whatever is missing first.
#
#   ./test.sh              every layer: unit, rendering, real services, rehearsal, swarm (needs root or
#                          sudo the first time, to install the host packages and start Docker)
#   ./test.sh unit         the fast layer only: no Docker, no root
#   ./test.sh swarm        the Docker Swarm layer: a 3-node swarm of its own (engines in network
#                          namespaces, a registry) built and removed by the tests; needs root
#   ./test.sh smoke        the Automation-API smoke test against the real Pulumi engine (needs
#                          the Pulumi CLI; not part of the suite)
#   ./test.sh [LAYER] [pytest options...]   e.g. ./test.sh unit -k deploy -x
#
# Set-up, each step only when needed: the host packages and the Docker engine through
# .ci/setup-host.sh (full suite only), the virtualenv .venv, the requirements.
set -euo pipefail

cd "$(dirname "$0")"

say() { printf '[test] %s\n' "$*" >&2; }
die() { printf '[test] ERROR: %s\n' "$*" >&2; exit 1; }

layer=all
case ${1:-} in
    unit | rendering | real | rehearsal | swarm | smoke | all) layer=$1 && shift ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' && exit 0 ;;
esac

# -- host: packages and the Docker engine (only the layers that use them) ---------------------------
# Root runs .ci/setup-host.sh every time (it is idempotent and quick when all is there); anyone
# else only when something is missing, through sudo.
host_ready() {
    local tool
    for tool in docker debootstrap nginx openssl psql redis-cli git curl docker-registry ip nsenter iptables; do
        PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null || { say "missing on this host: $tool"; return 1; }
    done
    docker info >/dev/null 2>&1 || { say "the Docker engine does not answer (for you)"; return 1; }
}

prepare_host() {
    if [ "$(id -u)" -eq 0 ]; then
        bash .ci/setup-host.sh
        return 0
    fi
    host_ready && return 0
    command -v sudo >/dev/null ||
        die "the host needs Debian packages and a running Docker engine: run 'bash .ci/setup-host.sh' as root once, then rerun (or run './test.sh unit', which needs neither)"
    say "preparing the host with sudo .ci/setup-host.sh (Debian packages, Docker engine)"
    sudo bash .ci/setup-host.sh
    host_ready ||
        die "the host is still not ready after .ci/setup-host.sh (see above); if Docker refuses you, add yourself to the docker group (sudo usermod -aG docker \"${USER:-$(id -un)}\") and log in again"
}

# -- the virtualenv and the requirements ---------------------------------------------------------------
requirements_digest() {
    .venv/bin/python -c 'import hashlib, pathlib, sys; print(hashlib.sha256(b"".join(pathlib.Path(p).read_bytes() for p in sys.argv[1:])).hexdigest())' requirements.txt requirements-dev.txt
}

prepare_venv() {
    if [ ! -x .venv/bin/python ]; then
        command -v python3 >/dev/null || die "python3 is missing: install Python 3.11 or newer (sudo apt-get install python3 python3-venv)"
        say "creating the virtualenv .venv"
        python3 -m venv .venv ||
            { rm -rf .venv; die "python3 cannot create a virtualenv: install its venv module (sudo apt-get install python3-venv) and rerun"; }
    fi
    local stamp=.venv/.requirements.sha256 digest
    digest=$(requirements_digest)
    if [ "$(cat "$stamp" 2>/dev/null || true)" != "$digest" ]; then
        say "installing requirements-dev.txt into .venv"
        .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt ||
            die "pip could not install requirements-dev.txt (see above): check the network or the package index, then rerun"
        echo "$digest" >"$stamp"
    fi
}

# The host first: on a fresh Debian it also brings python3-venv.
case $layer in
    rendering | real | rehearsal | swarm | all) prepare_host ;;
esac
prepare_venv
# As `. .venv/bin/activate` would: the tests' subprocesses find the venv's python and tools.
export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"
# The fast layer (the program under mocks and the renderers) runs on every core: its tests share
# nothing. The Docker layers mostly wait (for cron minutes, alert rules, health checks, Swarm's
# rollback), so they run side by side: the real-service tests on two workers, a file per worker
# (module fixtures stay in one process), the rehearsal and the swarm layer each in its own
# process. Every test owns its Docker objects (tests/docker_harness.py) and its ports
# (tests/ports.py), and a sweep never takes a live session's (tests/docker_sweeper.py), so the
# streams share the engine safely.
FAST=(tests/unit tests/rendering)
REAL=(-n 2 --dist loadfile)
# The swarm layer makes network namespaces, a bridge and a FORWARD rule: root's business.
swarm_layer() {
    # exec: as a Docker stream, its pid is pytest's (or sudo's, which relays signals) for the trap.
    if [ "$(id -u)" -eq 0 ]; then
        exec .venv/bin/python -m pytest tests/swarm "$@"
    else
        exec sudo --preserve-env=PATH,VIRTUAL_ENV .venv/bin/python -m pytest tests/swarm "$@"
    fi
}
# The three Docker streams side by side, each line of output tagged with its stream; fails when
# any stream fails, after all have ended (so each one's teardown has run).
docker_layers() {
    # Built once here, not by three session fixtures waiting on build.sh's lock.
    bash tests/images/build.sh
    local -A started=() names=()
    local pid name failed=() t0=$SECONDS
    stream() {
        local tag=$1
        shift
        "$@" > >(sed -u "/^\[$tag\]/!s/^/[$tag] /") 2>&1 &
        names[$!]=$tag
        started[$!]=$SECONDS
    }
    stream real .venv/bin/python -m pytest "${REAL[@]}" tests/real "$@"
    stream rehearsal .venv/bin/python -m pytest tests/rehearsal -s "$@"
    stream swarm swarm_layer "$@"
    # A CI timeout's SIGTERM reaches every stream (pytest runs its teardowns: tests/conftest.py).
    trap 'kill -TERM "${!names[@]}" 2>/dev/null' TERM INT
    while [ ${#names[@]} -gt 0 ]; do
        local rc=0
        pid=
        wait -n -p pid "${!names[@]}" || rc=$?
        # Interrupted by a signal (the trap passed it on): wait on for the streams' teardowns.
        [ -n "${pid:-}" ] || continue
        name=${names[$pid]}
        say "$name: $([ "$rc" -eq 0 ] && echo passed || echo "FAILED (exit $rc)") after $((SECONDS - started[$pid])) s"
        [ "$rc" -eq 0 ] || failed+=("$name")
        unset "names[$pid]"
    done
    trap - TERM INT
    say "Docker layers: $((SECONDS - t0)) s in all"
    [ ${#failed[@]} -eq 0 ] || die "failed: ${failed[*]} (search the output for its tag, e.g. '[${failed[0]}] FAILED')"
}

case $layer in
    unit) exec .venv/bin/python -m pytest -n auto "${FAST[@]}" "$@" ;;
    smoke) exec .venv/bin/python -m smoke "$@" ;;
    rendering) exec .venv/bin/python -m pytest tests/rendering "$@" ;;
    real) exec .venv/bin/python -m pytest "${REAL[@]}" tests/real "$@" ;;
    rehearsal) exec .venv/bin/python -m pytest tests/rehearsal -s "$@" ;;
    swarm) swarm_layer "$@" ;;
    all)
        .venv/bin/python -m pytest -n auto "${FAST[@]}" "$@"
        docker_layers "$@"
        ;;
esac
