#!/usr/bin/env bash
# Mutation test of the fast layer (tests/unit + tests/rendering) with mutmut.
#
#   bash tests/mutation/run.sh            # full run, then the score
#   bash tests/mutation/run.sh --score    # the score of the last run only
#   bash tests/mutation/run.sh 'scripts.backup.*'   # (re)run only the mutants matching these names
#
# Works in a scratch copy of the tree (MUTATION_WORKDIR), so the checkout never gets a
# mutants/ folder. Runs at the lowest priority with one worker: the host is shared.
# Needs a virtualenv with requirements-mutation.txt (MUTATION_VENV, made if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
venv=${MUTATION_VENV:-$root/.venv-mut}
work=${MUTATION_WORKDIR:-${TMPDIR:-/tmp}/catalogizer-mutation}

if [[ ! -x $venv/bin/mutmut ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements-mutation.txt
fi

if [[ ${1:-} != --score ]]; then
    mkdir -p "$work"
    # The tracked and new (not ignored) files as they are now; mutmut's own state is kept,
    # so a rerun only retests mutants whose function or tests changed.
    git ls-files -z --cached --others --exclude-standard -- . ':!.venv-mut' \
        | tar --null --files-from=- -cf - | tar -xf - -C "$work"
    cp tests/mutation/setup.cfg "$work/setup.cfg"
    (cd "$work" && PATH="$venv/bin:$PATH" nice -n 19 mutmut run --max-children 1 "$@") || true
fi

cd "$work"
PATH="$venv/bin:$PATH" mutmut export-cicd-stats >/dev/null
PATH="$venv/bin:$PATH" mutmut results > mutants/survivors.txt || true
"$venv/bin/python" - <<'PY'
import json
s = json.load(open("mutants/mutmut-cicd-stats.json"))
killed = s["killed"] + s.get("timeout", 0) + s.get("segfault", 0)
total = s["total"] - s.get("skipped", 0)
print(json.dumps(s, sort_keys=True))
print(f"mutation score: {killed}/{total} = {100 * killed / max(total, 1):.1f}% killed")
PY
echo "surviving mutants: $work/mutants/survivors.txt (inspect one with: cd $work && mutmut show NAME)"
