"""Settings of a service's own process, made once its startup is over.

`started()` moves everything the startup built (modules, the app, its schemas, compiled
statements) out of the garbage collector's reach and makes its young-generation collections
rarer. Under W4 (bench/) the gateway spent 12-13% of its CPU in the collector, most of it
traversing objects that live as long as the process; with the startup heap frozen, 5%.

`lower_priority(n)` is for the engine's background workers (scheduler, runners): on a
machine they share with the processes that answer API calls, the kernel then gives those
the CPU first, so a burst of executions queues in the bus instead of in the API's answers.
"""

from __future__ import annotations

import gc
import logging
import os

log = logging.getLogger(__name__)

# Allocations (less deallocations) between two young-generation collections: Python's
# default, 700, ran one every few requests in the gateway.
YOUNG_COLLECTION_THRESHOLD = 10_000


def started() -> None:
    """Call once a service is ready to serve: freezes the startup heap (`gc.freeze`) and
    raises the young-generation threshold. Long-lived objects made later are collected as
    usual."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)


def lower_priority(niceness: int) -> None:
    """Add `niceness` (0-19) to this process's nice value; 0 leaves it as it is. A process
    may always lower its own priority; it is inherited by no one else."""
    if niceness <= 0:
        return
    try:
        os.nice(niceness)
    except OSError as error:  # pragma: no cover - not seen on Linux, kept for other systems
        log.warning("could not lower the process priority: %s", error)
