#!/usr/bin/env bash
# Checks mutants against the current tests without a mutmut run: copies the last run's
# mutated tree (MUTATION_WORKDIR/mutants), puts the current tests in it, and runs the fast
# layer with each mutant switched on (MUTANT_UNDER_TEST, as mutmut itself does).
#
#   bash tests/mutation/try_mutant.sh NAME...      # prints "killed NAME" or "SURVIVED NAME"
#   MUTATION_TESTS_REF=abc123 bash tests/mutation/try_mutant.sh NAME...   # the tests of that commit
#   MUTATION_TESTS=tests/rendering bash tests/mutation/try_mutant.sh NAME...   # only these tests
#
# The mutated tree is the code of the last run: use tests that match that code.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
venv=${MUTATION_VENV:-$root/.venv-mut}
work=${MUTATION_WORKDIR:-${TMPDIR:-/tmp}/catalogizer-mutation}
copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
tar -C "$work/mutants" --exclude='*.meta' --exclude=tests -cf - . | tar -xf - -C "$copy"
if [[ -n ${MUTATION_TESTS_REF:-} ]]; then
    git archive "$MUTATION_TESTS_REF" tests | tar -xf - -C "$copy"
else
    git ls-files -z --cached --others --exclude-standard -- tests | tar --null --files-from=- -cf - | tar -xf - -C "$copy"
fi
status=0
for name in "$@"; do
    if (cd "$copy" && MUTANT_UNDER_TEST=$name nice -n 19 "$venv/bin/python" -m pytest -x -q -p no:cacheprovider \
        ${MUTATION_TESTS:-tests/unit tests/rendering} >/dev/null 2>&1); then
        echo "SURVIVED $name"
        status=1
    else
        echo "killed $name"
    fi
done
exit $status
