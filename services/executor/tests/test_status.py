from __future__ import annotations

import pytest

from agentloom_executor.status import TERMINAL, TRANSITIONS, Status, sources_of


def test_terminal_statuses_absorb() -> None:
    for status in TERMINAL:
        assert TRANSITIONS[status] == frozenset()


@pytest.mark.parametrize(
    ("source", "target", "legal"),
    [
        (Status.QUEUED, Status.RUNNING, True),
        (Status.QUEUED, Status.CANCELLED, True),
        (Status.RUNNING, Status.COMPLETED, True),
        (Status.INCOMPLETE, Status.QUEUED, True),
        (Status.QUEUED, Status.COMPLETED, False),
        (Status.COMPLETED, Status.RUNNING, False),
        (Status.CANCELLED, Status.RUNNING, False),
        (Status.FAILED, Status.COMPLETED, False),
    ],
)
def test_transition_table(source: Status, target: Status, legal: bool) -> None:
    assert (source.value in sources_of(target)) is legal


def test_the_database_guard_allows_exactly_the_transition_table() -> None:
    import importlib

    guard = importlib.import_module("agentloom_executor.migrations.versions.0003_transition_guard")
    from_table = {
        source.value: sorted(target.value for target in targets)
        for source, targets in TRANSITIONS.items()
        if targets
    }
    assert {k: sorted(v) for k, v in guard.NODE_TRANSITIONS.items()} == from_table
    executions = {k: sorted(v) for k, v in guard.EXECUTION_TRANSITIONS.items()}
    assert executions == {
        "QUEUED": ["CANCELLED", "RUNNING"],
        "RUNNING": ["CANCELLED", "COMPLETED", "FAILED"],
    }
