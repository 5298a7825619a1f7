from __future__ import annotations

import pytest

from agentloom_executor.server import Infra
from agentloom_executor.user_values import UserValues


async def test_values_persist_per_user_and_never_cross_users(engine: Infra) -> None:
    alice = UserValues(engine.sessions, "uv-alice")
    bob = UserValues(engine.sessions, "uv-bob")
    assert await alice.get("k") is None
    await alice.set("k", {"n": 1})
    await alice.set("k", {"n": 2})
    assert await alice.get("k") == {"n": 2}
    assert await bob.get("k") is None
    await alice.delete("k")
    assert await alice.get("k") is None
    with pytest.raises(ValueError):
        await alice.set("", 1)
