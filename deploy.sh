#!/usr/bin/env bash
# Deploys (or updates, or rolls back) one stack with the local state backend and a
# passphrase file: no Pulumi Cloud account needed.
#
#   ./deploy.sh dev            # or: ./deploy.sh prod --yes
#
# State lives in $CATALOGIZER_HOME/state, the passphrase that encrypts the stack's
# secrets in $CATALOGIZER_HOME/passphrase (created on first use: back it up).
set -euo pipefail

usage() { echo "usage: $0 STACK [pulumi up options...]   (STACK: a Pulumi.<STACK>.yaml beside this script)" >&2; exit 2; }
[ $# -ge 1 ] || usage
stack=$1
shift
cd "$(dirname "$0")"
[ -f "Pulumi.${stack}.yaml" ] || { echo "no Pulumi.${stack}.yaml here; create the stack's config first" >&2; exit 2; }
command -v pulumi >/dev/null || { echo "the Pulumi CLI is not on PATH: see README.md, Prerequisites" >&2; exit 2; }

home=${CATALOGIZER_HOME:-$HOME/.catalogizer}
mkdir -p "$home/state"
chmod 700 "$home"
export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$home/state}
export PULUMI_CONFIG_PASSPHRASE_FILE=${PULUMI_CONFIG_PASSPHRASE_FILE:-$home/passphrase}
if [ ! -s "$PULUMI_CONFIG_PASSPHRASE_FILE" ]; then
    (umask 077 && head -c 32 /dev/urandom | base64 > "$PULUMI_CONFIG_PASSPHRASE_FILE")
    echo "created $PULUMI_CONFIG_PASSPHRASE_FILE: back it up, it decrypts this stack's secrets" >&2
fi

pulumi stack select --create "$stack"
exec pulumi up --stack "$stack" "$@"
