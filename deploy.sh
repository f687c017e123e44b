#!/usr/bin/env bash
# Deploys (or updates, or rolls back) one stack with the local state backend and a
# passphrase file: no Pulumi Cloud account needed. On a machine with only Docker it
# sets up the rest itself, asking first:
#
#   ./deploy.sh dev            # or: ./deploy.sh prod --yes
#
# 1. the Docker engine must answer (checked before anything else);
# 2. the Pulumi CLI: PATH, else $CATALOGIZER_HOME/bin; missing -> offers the pinned release,
#    verified against Pulumi's published SHA-256 before anything is installed;
# 3. the stack's Catalogizer checkout (catalogizer:api.source): missing -> offers to clone
#    it with its submodules at the pinned, known-good commit;
# 4. state in $CATALOGIZER_HOME/state, the passphrase that encrypts the stack's secrets in
#    $CATALOGIZER_HOME/passphrase (created on first use: back it up);
# 5. `pulumi up`, then where to find the URL, the admin password, state and passphrase.
#
# --yes answers this script's questions (for non-interactive use) and is passed on to
# `pulumi up`. Overrides (environment):
#   CATALOGIZER_HOME                 default ~/.catalogizer
#   CATALOGIZER_PULUMI_VERSION       CLI version to install (default below)
#   CATALOGIZER_PULUMI_DOWNLOAD_URL  where the release archives and the checksums file are
#   CATALOGIZER_REPO_URL             Catalogizer repository to clone
#   CATALOGIZER_COMMIT               commit to check out after cloning
set -euo pipefail

PULUMI_VERSION_PINNED=3.272.0
PULUMI_DOWNLOAD_URL_DEFAULT=https://get.pulumi.com/releases/sdk
CATALOGIZER_REPO_URL_DEFAULT=https://github.com/vasic-digital/Catalogizer.git
# Known good: catalog-api/Dockerfile builds from the repository root with the submodules.
CATALOGIZER_COMMIT_DEFAULT=0ea8dcf64b4704e9332e5eb141a431791cde0c78

say() { printf '[deploy] %s\n' "$*" >&2; }
die() { printf '[deploy] ERROR: %s\n' "$*" >&2; exit "${2:-1}"; }
usage() {
    echo "usage: $0 STACK [--yes] [pulumi up options...]   (STACK: a Pulumi.<STACK>.yaml beside this script)" >&2
    exit 2
}

[ $# -ge 1 ] || usage
stack=$1
shift
case $stack in -*) usage ;; esac
assume_yes=false
for arg in "$@"; do
    case $arg in --yes | -y) assume_yes=true ;; esac
done
cd "$(dirname "$0")"
project_dir=$(pwd)
stack_file="Pulumi.${stack}.yaml"
[ -f "$stack_file" ] || die "no $stack_file here; create the stack's config first (see README.md, Configuration)" 2

home=${CATALOGIZER_HOME:-$HOME/.catalogizer}

# Asks a yes/no question; --yes answers it, a missing terminal refuses it.
confirm() {
    local question=$1 answer
    if $assume_yes; then
        say "$question yes (--yes)"
        return 0
    fi
    if [ ! -t 0 ]; then
        say "$question"
        die "no terminal to answer on: rerun with --yes to accept, or do it yourself (see README.md, Prerequisites)"
    fi
    read -r -p "[deploy] $question [y/N] " answer
    case $answer in [yY] | [yY][eE][sS]) return 0 ;; *) return 1 ;; esac
}

# Runs a command that could hang (an engine that accepts but never answers) for at most 30 s.
bounded() {
    if command -v timeout >/dev/null; then timeout 30 "$@"; else "$@"; fi
}

# -- 1. Docker --------------------------------------------------------------------------------------
check_docker() {
    command -v docker >/dev/null ||
        die "the docker command is missing: install Docker Engine 20.10 or newer (https://docs.docker.com/engine/install/, or on Debian: sudo apt-get install docker.io), then rerun"
    local out
    if ! out=$(bounded docker info --format '{{.ServerVersion}}' 2>&1); then
        say "docker info: $(printf '%s' "$out" | head -n 3)"
        if printf '%s' "$out" | grep -qi 'permission denied'; then
            die "the Docker engine refuses you: add yourself to the docker group (sudo usermod -aG docker \"${USER:-$(id -un)}\", then log in again) or run as root"
        fi
        die "the Docker engine does not answer${DOCKER_HOST:+ at $DOCKER_HOST}: start it (sudo systemctl start docker, or open Docker Desktop) and rerun"
    fi
    say "Docker engine $out answers"
}

# -- 2. Pulumi CLI ----------------------------------------------------------------------------------
sha256_of() {
    if command -v sha256sum >/dev/null; then
        sha256sum "$1" | awk '{print $1}'
    elif command -v shasum >/dev/null; then
        shasum -a 256 "$1" | awk '{print $1}'
    else
        die "neither sha256sum nor shasum is installed: cannot verify the download"
    fi
}

download() { # URL FILE
    if command -v curl >/dev/null; then
        curl --fail --silent --show-error --location --retry 2 --connect-timeout 15 --max-time 900 -o "$2" "$1"
    elif command -v wget >/dev/null; then
        wget --quiet --tries=3 --timeout=15 -O "$2" "$1"
    else
        die "neither curl nor wget is installed: cannot download the Pulumi CLI"
    fi
}

platform() {
    local os arch
    case $(uname -s) in
        Linux) os=linux ;;
        Darwin) os=darwin ;;
        *) die "no Pulumi release for $(uname -s) here: install the CLI yourself (https://www.pulumi.com/docs/install/)" ;;
    esac
    case $(uname -m) in
        x86_64 | amd64) arch=x64 ;;
        aarch64 | arm64) arch=arm64 ;;
        *) die "no Pulumi release for the $(uname -m) processor: install the CLI yourself (https://www.pulumi.com/docs/install/)" ;;
    esac
    echo "$os-$arch"
}

install_pulumi() {
    local version=${CATALOGIZER_PULUMI_VERSION:-$PULUMI_VERSION_PINNED}
    local base=${CATALOGIZER_PULUMI_DOWNLOAD_URL:-$PULUMI_DOWNLOAD_URL_DEFAULT}
    local plat
    plat=$(platform) || exit 1
    local archive="pulumi-v${version}-${plat}.tar.gz"
    local sums="pulumi-${version}-checksums.txt"
    confirm "the Pulumi CLI is not on PATH. Install Pulumi $version into $home/bin from $base?" ||
        die "not installed; install the Pulumi CLI yourself (https://www.pulumi.com/docs/install/) and rerun" 2

    mkdir -p "$home"
    chmod 700 "$home"
    # Staged beside the destination, so the final moves are renames on one file system.
    staging=$(mktemp -d "$home/.pulumi-install.XXXXXX")
    trap 'rm -rf "$staging"' EXIT
    say "downloading $base/$sums"
    download "$base/$sums" "$staging/$sums" ||
        die "could not download $base/$sums; nothing was installed (check the network, or set CATALOGIZER_PULUMI_DOWNLOAD_URL)"
    say "downloading $base/$archive"
    download "$base/$archive" "$staging/$archive" ||
        die "could not download $base/$archive; nothing was installed (check the network, or set CATALOGIZER_PULUMI_DOWNLOAD_URL)"

    local expected actual
    expected=$(awk -v name="$archive" '$2 == name || $2 == "*" name {print $1; exit}' "$staging/$sums")
    [ -n "$expected" ] || die "$sums lists no checksum for $archive; nothing was installed"
    actual=$(sha256_of "$staging/$archive")
    if [ "$actual" != "$expected" ]; then
        die "checksum mismatch for $archive: published $expected, downloaded $actual. Nothing was installed; the download is corrupt or not Pulumi's, retry later"
    fi
    say "sha256 of $archive matches Pulumi's published checksum"

    mkdir "$staging/unpacked"
    tar -xzf "$staging/$archive" -C "$staging/unpacked" ||
        die "$archive does not unpack; nothing was installed"
    local unpacked=$staging/unpacked/pulumi
    [ -x "$unpacked/pulumi" ] || die "$archive has no pulumi/pulumi executable; nothing was installed"
    local reported
    reported=$("$unpacked/pulumi" version 2>/dev/null) || die "the unpacked pulumi does not run on this machine; nothing was installed"
    [ "$reported" = "v$version" ] || die "the unpacked pulumi reports $reported, not v$version; nothing was installed"

    mkdir -p "$home/bin"
    # The plugins and language hosts first, `pulumi` itself last: a `pulumi` in bin/ always
    # comes with everything it needs, and each move is a rename (never a half-written file).
    local file
    for file in "$unpacked"/*; do
        [ "$(basename "$file")" = pulumi ] || mv -f "$file" "$home/bin/"
    done
    mv -f "$unpacked/pulumi" "$home/bin/pulumi"
    rm -rf "$staging"
    trap - EXIT
    say "installed Pulumi $version in $home/bin"
}

find_pulumi() {
    if command -v pulumi >/dev/null; then
        return 0
    fi
    if [ -x "$home/bin/pulumi" ]; then
        export PATH="$home/bin:$PATH"
        return 0
    fi
    install_pulumi
    export PATH="$home/bin:$PATH"
}

# -- 3. The Catalogizer checkout --------------------------------------------------------------------
# A value of the stack file's `catalogizer:api:` map, e.g. `source: ../Catalogizer`.
api_setting() {
    awk -v key="$1" '
        /^[^ ]/ || /^  [^ ]/ { in_api = ($0 ~ /^  catalogizer:api:[ ]*$/); next }
        in_api && $1 == key ":" {
            sub(/^[^:]*:[ ]*/, ""); sub(/[ ]+#.*$/, ""); gsub(/^["\047]|["\047]$/, ""); print; exit
        }
    ' "$stack_file"
}

clone_catalogizer() { # DEST
    local dest=$1
    local url=${CATALOGIZER_REPO_URL:-$CATALOGIZER_REPO_URL_DEFAULT}
    local commit=${CATALOGIZER_COMMIT:-$CATALOGIZER_COMMIT_DEFAULT}
    command -v git >/dev/null || die "git is missing: install it (sudo apt-get install git), or place a Catalogizer checkout at $dest"
    confirm "the stack builds the API from $dest, which does not exist. Clone $url at $commit there (with its submodules)?" ||
        die "no checkout; clone Catalogizer with its submodules to $dest yourself, or set catalogizer:api.image (see README.md)" 2
    mkdir -p "$(dirname "$dest")"
    clone_tmp=$(mktemp -d "$(dirname "$dest")/.catalogizer-clone.XXXXXX")
    trap 'rm -rf "$clone_tmp"' EXIT
    # Catalogizer's submodules are listed with ssh URLs (git@github.com:...); https needs no key.
    local -a git_https=(-c "url.https://github.com/.insteadOf=git@github.com:")
    say "cloning $url (with submodules) ..."
    git "${git_https[@]}" clone --quiet --recurse-submodules "$url" "$clone_tmp/checkout" ||
        die "could not clone $url; nothing was left at $dest (check the network, or set CATALOGIZER_REPO_URL)"
    git -C "$clone_tmp/checkout" -c advice.detachedHead=false checkout --quiet "$commit" ||
        die "$url has no commit $commit; nothing was left at $dest (set CATALOGIZER_COMMIT to one it has)"
    git "${git_https[@]}" -C "$clone_tmp/checkout" submodule --quiet update --init --recursive ||
        die "could not fetch the submodules of $commit; nothing was left at $dest"
    mv "$clone_tmp/checkout" "$dest"
    rm -rf "$clone_tmp"
    trap - EXIT
    say "cloned Catalogizer $commit into $dest"
}

resolve() { # PATH relative to this project
    case $1 in /*) echo "$1" ;; *) echo "$project_dir/$1" ;; esac
}

check_checkout() {
    local source media
    source=$(api_setting source)
    if [ -n "$source" ]; then
        local dest
        dest=$(resolve "$source")
        if [ ! -e "$dest" ]; then
            clone_catalogizer "$dest"
        elif [ ! -f "$dest/catalog-api/Dockerfile" ]; then
            die "$dest is not a Catalogizer checkout (no catalog-api/Dockerfile): move it away and rerun, or fix catalogizer:api.source in $stack_file"
        fi
    fi
    media=$(api_setting mediaRoot)
    if [ -n "$media" ] && [ ! -e "$(resolve "$media")" ]; then
        mkdir -p "$(resolve "$media")"
        say "created the (empty) media folder $(resolve "$media"), mounted read-only into the API"
    fi
}

# Pulumi creates .venv from requirements.txt on the first `pulumi up`: that needs venv + pip.
check_python() {
    [ -x .venv/bin/python ] && return 0
    command -v python3 >/dev/null || die "python3 is missing: install Python 3.11 or newer (sudo apt-get install python3 python3-venv)"
    python3 -c 'import ensurepip, venv' 2>/dev/null ||
        die "python3 cannot create a virtualenv: install its venv module (sudo apt-get install python3-venv)"
}

check_docker
find_pulumi
check_checkout
check_python

mkdir -p "$home/state"
chmod 700 "$home"
export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$home/state}
export PULUMI_CONFIG_PASSPHRASE_FILE=${PULUMI_CONFIG_PASSPHRASE_FILE:-$home/passphrase}
export PULUMI_SKIP_UPDATE_CHECK=true
if [ ! -s "$PULUMI_CONFIG_PASSPHRASE_FILE" ]; then
    (umask 077 && head -c 32 /dev/urandom | base64 >"$PULUMI_CONFIG_PASSPHRASE_FILE")
    say "created $PULUMI_CONFIG_PASSPHRASE_FILE: back it up, it decrypts this stack's secrets"
fi

pulumi stack select --create "$stack"
pulumi up --stack "$stack" "$@"

url=$(pulumi stack output url --stack "$stack" 2>/dev/null || true)
cat >&2 <<EOF

[deploy] $stack is up${url:+ at $url}
[deploy] admin password:  pulumi stack output adminPassword --show-secrets --stack $stack
[deploy] state:           $PULUMI_BACKEND_URL
[deploy] passphrase file: $PULUMI_CONFIG_PASSPHRASE_FILE (back it up: it decrypts the stack's secrets)
[deploy] other pulumi commands need, once per shell:
  export PATH="$(dirname "$(command -v pulumi)"):\$PATH" PULUMI_BACKEND_URL=$PULUMI_BACKEND_URL PULUMI_CONFIG_PASSPHRASE_FILE=$PULUMI_CONFIG_PASSPHRASE_FILE
EOF
