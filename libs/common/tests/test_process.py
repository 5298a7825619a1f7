"""The process settings a service applies once it serves (agentloom_common.process)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

from agentloom_common import process


def test_started_freezes_the_startup_heap_and_collects_the_young_less_often() -> None:
    before = gc.get_threshold()
    try:
        assert gc.get_freeze_count() == 0
        process.started()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == process.YOUNG_COLLECTION_THRESHOLD
        assert gc.get_threshold()[1:] == before[1:]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def _niceness_after(niceness: int) -> int:
    code = (
        "import os; from agentloom_common import process; "
        f"process.lower_priority({niceness}); print(os.nice(0))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_lower_priority_adds_to_the_nice_value_and_zero_keeps_it() -> None:
    own = os.nice(0)
    assert _niceness_after(5) == min(own + 5, 19)
    assert _niceness_after(0) == own
