"""`python -m smoke` (or `./test.sh smoke`): exit 0 passed, 1 failed, 2 cannot run here."""

from __future__ import annotations

import sys

from smoke.scenarios import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
