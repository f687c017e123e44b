"""Reads mutmut's results (mutants/**/*.meta, from the scratch folder) for tests/mutation/run.sh.

python mutants.py sample N SEED   # prints a seeded random sample of N mutant names
python mutants.py score [FILE]    # the score over all mutants, or over the names in FILE
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

# mutmut's exit codes (mutmut/stats.py); a timeout is a detected mutant, as mutmut counts it.
KILLED = {1, 3, 37, -24, 24, 152, 255, 36, -11, -9}
SURVIVED = {0}
NO_TESTS = {5, 33}


def results() -> dict[str, int | None]:
    found: dict[str, int | None] = {}
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        found.update(json.loads(meta.read_text())["exit_code_by_key"])
    return found


def sample(count: int, seed: int) -> list[str]:
    names = sorted(results())
    return sorted(random.Random(seed).sample(names, min(count, len(names))))


def score(names: list[str] | None) -> int:
    everything = results()
    chosen = {name: everything.get(name) for name in names} if names is not None else everything
    killed = [n for n, code in chosen.items() if code in KILLED]
    survived = [n for n, code in chosen.items() if code in SURVIVED]
    untested = [n for n, code in chosen.items() if code in NO_TESTS]
    unchecked = [n for n, code in chosen.items() if code is None]
    other = [n for n in chosen if n not in {*killed, *survived, *untested, *unchecked}]
    judged = len(chosen) - len(unchecked)
    scope = f"sample of {len(chosen)}" if names is not None else f"all {len(chosen)}"
    print(
        f"mutants ({scope}): killed {len(killed)}, survived {len(survived)}, no tests {len(untested)}, "
        f"other {len(other)}, not run yet {len(unchecked)}"
    )
    if judged:
        print(f"mutation score: {len(killed)}/{judged} = {100 * len(killed) / judged:.1f}%")
    for label, group in (("survived", survived), ("no tests", untested), ("other", other)):
        for name in group:
            print(f"{label}: {name}")
    return 0


def main() -> int:
    if sys.argv[1] == "sample":
        print("\n".join(sample(int(sys.argv[2]), int(sys.argv[3]))))
        return 0
    if sys.argv[1] == "pending":
        codes = results()
        print("\n".join(n for n in Path(sys.argv[2]).read_text().split() if codes.get(n) not in KILLED))
        return 0
    names = Path(sys.argv[2]).read_text().split() if len(sys.argv) > 2 else None
    return score(names)


if __name__ == "__main__":
    sys.exit(main())
