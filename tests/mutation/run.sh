#!/usr/bin/env bash
# Mutation test of the fast layer (tests/unit + tests/rendering) with mutmut.
#
#   bash tests/mutation/run.sh                  # every mutant (nightly: hours on a shared 2-core host)
#   bash tests/mutation/run.sh --sample 300     # a seeded random sample (MUTATION_SEED, default 16);
#                                               # run again, it retests only its mutants not yet killed
#   bash tests/mutation/run.sh NAME...          # (re)run only these mutants (globs allowed)
#   bash tests/mutation/run.sh --score          # the score of what has run, and the survivors
#
# Works in a scratch copy of the tree (MUTATION_WORKDIR), so the checkout never gets a
# mutants/ folder; mutmut keeps its results there, so a later run only tests what has no
# result yet (or what is named). Runs at the lowest priority with one worker: the host is
# shared. Needs a virtualenv with requirements-mutation.txt (MUTATION_VENV, made if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
venv=${MUTATION_VENV:-$root/.venv-mut}
work=${MUTATION_WORKDIR:-${TMPDIR:-/tmp}/catalogizer-mutation}
export PATH="$venv/bin:$PATH"

if [[ ! -x $venv/bin/mutmut ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements-mutation.txt
fi

mutmut_run() {
    (cd "$work" && nice -n 19 mutmut run --max-children 1 "$@")
}

if [[ ${1:-} != --score ]]; then
    mkdir -p "$work"
    # The tracked and new (not ignored) files as they are now.
    git ls-files -z --cached --others --exclude-standard -- . ':!.venv-mut' \
        | tar --null --files-from=- -cf - | tar -xf - -C "$work"
    cp tests/mutation/setup.cfg "$work/setup.cfg"
    if [[ ${1:-} == --sample ]]; then
        # Generates the mutants and the test map, then stops: no name matches this filter.
        mutmut_run 'no-such-mutant*' >/dev/null 2>&1 || true
        (cd "$work" && "$venv/bin/python" "$root/tests/mutation/mutants.py" sample "$2" "${MUTATION_SEED:-16}") \
            >"$work/mutants/sample.txt"
        # Killed mutants stay killed (tests are only ever added); the rest are (re)run.
        mapfile -t names < <(cd "$work" && "$venv/bin/python" "$root/tests/mutation/mutants.py" pending mutants/sample.txt)
        [[ ${#names[@]} -eq 0 ]] || mutmut_run "${names[@]}" || true
    else
        [[ $# -gt 0 ]] || rm -f "$work/mutants/sample.txt"  # a full run is scored in full
        mutmut_run "$@" || true
    fi
fi

cd "$work"
# The score of the sample when the last full choice was a sample, else of every mutant.
"$venv/bin/python" "$root/tests/mutation/mutants.py" score $([[ -f mutants/sample.txt ]] && echo mutants/sample.txt)
