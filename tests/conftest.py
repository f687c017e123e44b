import sys
from pathlib import Path

# The program's own modules (settings, components, rendering) and the test helpers.
ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
