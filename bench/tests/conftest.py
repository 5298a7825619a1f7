"""The harness's own tests: pure functions only (graphs, checks, statistics, the report),
quick and without servers. `bench` is imported from the repository root."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
