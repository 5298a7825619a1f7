"""Execution and node execution statuses, with the transitions the reference manual draws
(section 5.2): QUEUED -> RUNNING -> COMPLETED | FAILED | CANCELLED, QUEUED -> CANCELLED.
Node executions also start INCOMPLETE while they wait for inputs, and go back from RUNNING
to QUEUED for a retry or when their runner was lost. Terminal states absorb."""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    INCOMPLETE = "INCOMPLETE"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})
ACTIVE = frozenset({Status.QUEUED, Status.RUNNING})

TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.INCOMPLETE: frozenset({Status.QUEUED, Status.CANCELLED}),
    Status.QUEUED: frozenset({Status.RUNNING, Status.CANCELLED}),
    # RUNNING -> QUEUED: a node execution waiting for a retry, or whose runner was lost.
    Status.RUNNING: frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.QUEUED}),
    Status.COMPLETED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
}


def sources_of(target: Status) -> list[str]:
    """The statuses from which `target` may be entered: the WHERE of a conditional UPDATE."""
    return [source.value for source, targets in TRANSITIONS.items() if target in targets]
