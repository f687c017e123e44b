#!/usr/bin/env bash
# Build the local test images. No registry is reachable, so everything starts
# from a debootstrap'ed Debian bookworm rootfs imported into Docker.
#
# Usage: tests/images/build.sh [--force]
#
# Caching: an image whose tag exists and whose catalogizer.test.build-hash label
# matches the current recipe (context files + build args + parent image id) is
# skipped. --force rebuilds everything without layer cache. Changing a Dockerfile therefore rebuilds
# that image and its children, and nothing else.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
STANDIN_ROOT="$REPO_ROOT/tests/standin_catalogizer"

BASE_TAG="catalogizer-test/debian-base:bookworm"
POSTGRES_TAG="catalogizer-test/postgres:15-r2"
REDIS_TAG="catalogizer-test/redis:7"
NGINX_TAG="catalogizer-test/nginx:1.22"
PYRT_TAG="catalogizer-test/python-runtime:bookworm"
# Overridable so a worktree that changes the stand-in can build and test it under
# its own tags without flipping the shared ones under other sessions' feet
# (tags.py reads the same variable).
API_REPO="${CATALOGIZER_TEST_API_REPOSITORY:-catalogizer-test/api-standin}"

# Bump to invalidate the cached base image when the debootstrap recipe changes.
BASE_RECIPE_VERSION=1
HASH_LABEL="catalogizer.test.build-hash"

FORCE=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done

log() { printf '[images] %s\n' "$*"; }
die() { printf '[images] ERROR: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null || die "docker CLI not found (run .ci/setup-host.sh)"
docker info >/dev/null 2>&1 || die "docker engine not reachable (run .ci/setup-host.sh)"

# Concurrent test sessions on one engine would otherwise build the same tags
# twice; the second waits here and then finds everything cached.
exec 9>/tmp/catalogizer-test-images.lock
if ! flock -n 9; then
    log "another build is running; waiting for it"
    flock 9
fi

WORK="$(mktemp -d /tmp/cz-images.XXXXXX)"
cleanup() {
    # The rootfs contains root-owned device nodes; plain rm is enough as root.
    rm -rf "$WORK"
}
trap cleanup EXIT

image_label() {
    docker image inspect --format "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$1" 2>/dev/null || true
}

image_id() {
    docker image inspect --format '{{.Id}}' "$1"
}

# Decide whether "$1" (tag) with recipe hash "$2" needs a build.
needs_build() {
    local tag="$1" want="$2"
    [ "$FORCE" -eq 1 ] && return 0
    [ "$(image_label "$tag")" = "$want" ] && return 1
    return 0
}

hash_dir() {
    # Hash of every file's relative path + content, stable across machines.
    (cd "$1" && find . -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z \
        | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}

# --- apt sources of this host ------------------------------------------------
# Emits "URI SUITE COMPONENT..." for every enabled binary (deb) entry, from both
# one-line .list files and deb822 .sources files.
host_apt_entries() {
    local lists=() sources=()
    [ -f /etc/apt/sources.list ] && lists+=(/etc/apt/sources.list)
    for f in /etc/apt/sources.list.d/*.list; do [ -f "$f" ] && lists+=("$f"); done
    for f in /etc/apt/sources.list.d/*.sources; do [ -f "$f" ] && sources+=("$f"); done
    if [ "${#lists[@]}" -gt 0 ]; then
        awk '
            /^[ \t]*deb[ \t]/ {
                line = $0
                sub(/#.*/, "", line)
                gsub(/\[[^]]*\]/, "", line)
                n = split(line, F, " ")
                out = F[2] " " F[3]
                for (i = 4; i <= n; i++) out = out " " F[i]
                print out
            }' "${lists[@]}"
    fi
    if [ "${#sources[@]}" -gt 0 ]; then
        awk '
            function flush(   n, m, i, j, U, S) {
                if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no") {
                    n = split(uris, U, " "); m = split(suites, S, " ")
                    for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print U[i], S[j], comps
                }
                types = uris = suites = comps = enabled = ""
            }
            FNR == 1 && NR > 1 { flush() }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[A-Za-z-]+:/ {
                key = tolower($1); sub(/:$/, "", key)
                val = $0; sub(/^[^:]*:[ \t]*/, "", val)
                if (key == "types") types = val
                else if (key == "uris") uris = val
                else if (key == "suites") suites = val
                else if (key == "components") comps = val
                else if (key == "enabled") enabled = tolower(val)
            }
            END { flush() }' "${sources[@]}"
    fi
}

# URI serving "$1" (a suite) with component main, trailing slash stripped.
mirror_for_suite() {
    host_apt_entries | awk -v s="$1" '
        $2 == s { for (i = 3; i <= NF; i++) if ($i == "main") { u = $1; sub(/\/+$/, "", u); print u; exit } }'
}

MIRROR="${CATALOGIZER_TEST_APT_MIRROR:-$(mirror_for_suite bookworm)}"
[ -n "$MIRROR" ] || die "no 'bookworm main' entry found in /etc/apt/sources.list{,.d/*}; set CATALOGIZER_TEST_APT_MIRROR"
UPDATES_MIRROR="$(mirror_for_suite bookworm-updates)"
SECURITY_MIRROR="$(mirror_for_suite bookworm-security)"

# deb822 sources for the image: the same mirrors the host uses, so that
# Dockerfiles can apt-get install through whatever this network allows.
image_sources() {
    local key="Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
    printf 'Types: deb\nURIs: %s\nSuites: bookworm\nComponents: main\n%s\n' "$MIRROR" "$key"
    if [ -n "$UPDATES_MIRROR" ]; then
        printf '\nTypes: deb\nURIs: %s\nSuites: bookworm-updates\nComponents: main\n%s\n' "$UPDATES_MIRROR" "$key"
    fi
    if [ -n "$SECURITY_MIRROR" ]; then
        printf '\nTypes: deb\nURIs: %s\nSuites: bookworm-security\nComponents: main\n%s\n' "$SECURITY_MIRROR" "$key"
    fi
}

# --- base image ----------------------------------------------------------------
build_base() {
    local want
    want="$( { echo "recipe=$BASE_RECIPE_VERSION"; image_sources; } | sha256sum | cut -d' ' -f1)"
    if ! needs_build "$BASE_TAG" "$want"; then
        log "$BASE_TAG: cached"
        return 0
    fi
    command -v debootstrap >/dev/null || die "debootstrap not installed (run .ci/setup-host.sh)"
    local start=$SECONDS rootfs="$WORK/rootfs"
    log "$BASE_TAG: debootstrap --variant=minbase bookworm from $MIRROR"
    if ! debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
        tail -n 40 "$WORK/debootstrap.log" >&2
        [ -f "$rootfs/debootstrap/debootstrap.log" ] && tail -n 40 "$rootfs/debootstrap/debootstrap.log" >&2
        die "debootstrap failed"
    fi

    rm -f "$rootfs/etc/apt/sources.list"
    image_sources >"$rootfs/etc/apt/sources.list.d/debian.sources"

    # Same tweaks as the official debian images: no daemons started by
    # postinst scripts inside builds, no recommends, no docs, and no apt
    # caches left in layers.
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
    chmod 755 "$rootfs/usr/sbin/policy-rc.d"
    cat >"$rootfs/etc/apt/apt.conf.d/90catalogizer-test" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Acquire::Retries "3";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/90catalogizer-test-nodoc" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
DPKG
    rm -rf "$rootfs"/usr/share/doc/*/[!c]* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
        "$rootfs"/usr/share/locale/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb \
        "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log "$rootfs"/debootstrap
    # Host identity files must come from Docker at run time, not from the host.
    : >"$rootfs/etc/hostname"
    : >"$rootfs/etc/resolv.conf"

    tar -C "$rootfs" --numeric-owner -c . | docker import \
        --change "LABEL $HASH_LABEL=$want" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        - "$BASE_TAG" >/dev/null
    rm -rf "$rootfs"
    log "$BASE_TAG: built in $((SECONDS - start)) s ($(docker image inspect --format '{{.Size}}' "$BASE_TAG" | awk '{printf "%.0f MB", $1/1e6}'))"
}

# --- Dockerfile images ------------------------------------------------------------
# build_image TAG PARENT_TAG CONTEXT_DIR DOCKERFILE [--build-arg K=V ...]
build_image() {
    local tag="$1" parent="$2" ctx="$3" dockerfile="$4"
    shift 4
    local want
    want="$( { image_id "$parent"; hash_dir "$ctx"; printf '%s\n' "$@"; } | sha256sum | cut -d' ' -f1)"
    if ! needs_build "$tag" "$want"; then
        log "$tag: cached"
        return 0
    fi
    local start=$SECONDS logf="$WORK/build-${tag//[\/:]/_}.log"
    # The image this tag names now is replaced: remember it, to remove it (and only it) at the end.
    docker image inspect --format '{{.Id}}' "$tag" >>"$WORK/replaced-ids" 2>/dev/null || true
    log "$tag: building"
    local cache_flag=()
    [ "$FORCE" -eq 1 ] && cache_flag=(--no-cache)
    if ! docker build "${cache_flag[@]}" --label "$HASH_LABEL=$want" -t "$tag" -f "$dockerfile" "$@" "$ctx" \
        >"$logf" 2>&1; then
        tail -n 60 "$logf" >&2
        die "$tag: docker build failed"
    fi
    log "$tag: built in $((SECONDS - start)) s ($(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
}

total_start=$SECONDS
build_base

# The four service images only share the base, and their builds are dominated
# by apt downloads, so run them concurrently.
pids=()
for spec in "postgres:$POSTGRES_TAG" "redis:$REDIS_TAG" "nginx:$NGINX_TAG" "python-runtime:$PYRT_TAG"; do
    name="${spec%%:*}"
    tag="${spec#*:}"
    build_image "$tag" "$BASE_TAG" "$HERE/$name" "$HERE/$name/Dockerfile" &
    pids+=("$!")
done
failed=0
for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
done
[ "$failed" -eq 0 ] || die "one or more service images failed to build"

# Not Grafana: a documented stand-in (grafana-standin/Dockerfile) on the Python runtime; Debian
# does not package Grafana.
build_image "catalogizer-test/grafana-standin:11-r2" "$PYRT_TAG" "$HERE/grafana-standin" "$HERE/grafana-standin/Dockerfile"

# The stand-in API is built the way the deploy program builds Catalogizer: repo
# root as context, catalog-api/Dockerfile as the Dockerfile.
API_DF="$STANDIN_ROOT/catalog-api/Dockerfile"
build_image "$API_REPO:v1" "$PYRT_TAG" "$STANDIN_ROOT" "$API_DF" --build-arg VERSION=v1
build_image "$API_REPO:v2" "$PYRT_TAG" "$STANDIN_ROOT" "$API_DF" --build-arg VERSION=v2
build_image "$API_REPO:broken" "$PYRT_TAG" "$STANDIN_ROOT" "$API_DF" --build-arg VERSION=broken --build-arg HEALTH_MODE=broken

# --- monitoring (issue 12): Prometheus, Alertmanager and the exporters --------------
# One Dockerfile, one image per Debian package; the tags are in tags.py (MONITORING).
# Concurrent like the service images: the builds are apt downloads.
MON_DIR="$HERE/prometheus-family"
mon_pids=()
# name:package:binary[:upstream binary path]
for spec in prometheus:prometheus:prometheus \
    alertmanager:prometheus-alertmanager:prometheus-alertmanager \
    postgres-exporter:prometheus-postgres-exporter:prometheus-postgres-exporter \
    redis-exporter:prometheus-redis-exporter:prometheus-redis-exporter \
    blackbox-exporter:prometheus-blackbox-exporter:prometheus-blackbox-exporter \
    nginx-exporter:prometheus-nginx-exporter:prometheus-nginx-exporter:/usr/bin/nginx-prometheus-exporter; do
    IFS=: read -r mon_name mon_package mon_binary mon_link <<<"$spec"
    build_image "catalogizer-test/mon-$mon_name:bookworm" "$BASE_TAG" "$MON_DIR" "$MON_DIR/Dockerfile" \
        --build-arg "PACKAGE=$mon_package" --build-arg "BINARY=$mon_binary" --build-arg "UPSTREAM_PATH=$mon_link" &
    mon_pids+=("$!")
done
for pid in "${mon_pids[@]}"; do
    wait "$pid" || failed=1
done
[ "$failed" -eq 0 ] || die "one or more monitoring images failed to build"

# --- off-host backup targets (issue 11): an SFTP host and a restic REST server -----
SFTP_TAG="catalogizer-test/sftp:bookworm"
RCLONE_TAG="catalogizer-test/rclone:bookworm"
build_image "$SFTP_TAG" "$BASE_TAG" "$HERE/sftp" "$HERE/sftp/Dockerfile"
build_image "$RCLONE_TAG" "$BASE_TAG" "$HERE/rclone" "$HERE/rclone/Dockerfile"

# Superseded builds leave untagged images behind; drop only ours.
# Only the images this run replaced, never a prune by label: labels are inherited, so a prune
# would also delete other sessions' images built on ours (the rehearsal's previous API image).
# An ID still tagged or used by a container is refused by Docker and stays.
if [ -s "$WORK/replaced-ids" ]; then
    sort -u "$WORK/replaced-ids" | while read -r old; do
        docker image rm "$old" >/dev/null 2>&1 || true
    done
fi

log "all images ready in $((SECONDS - total_start)) s"
