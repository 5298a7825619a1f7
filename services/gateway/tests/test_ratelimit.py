"""The rate limiter against the real Redis: blocks of a window's budget reserved ahead,
served from memory, exact at the limit; several gateways sharing one Redis never admit
more than the limit between them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from agentloom_gateway.ratelimit import MAX_BLOCK, RateLimiter
from agentloom_gateway.settings import GatewaySettings


@pytest.fixture
async def redis(settings: GatewaySettings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


def _limiter(redis: Redis, prefix: str, limit: int, window_s: int = 60) -> RateLimiter:
    return RateLimiter(redis, prefix=prefix, window_s=window_s, limits={"read": limit})


async def _counted(redis: Redis, prefix: str) -> int:
    return int(await redis.get(f"{prefix}read:alice") or 0)


async def test_a_large_budget_is_counted_in_redis_a_block_at_a_time(redis: Redis) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    limiter = _limiter(redis, prefix, limit=10_000)
    decisions = [await limiter.hit("alice", "read") for _ in range(30)]
    assert all(decision.allowed for decision in decisions)
    # Exact for one gateway: every request counts, whatever was reserved ahead.
    assert [d.remaining for d in decisions] == list(range(9_999, 9_969, -1))
    assert await _counted(redis, prefix) == MAX_BLOCK  # one reservation served all 30


async def test_the_limit_is_exact_and_a_spent_window_is_refused_from_memory(
    redis: Redis,
) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    limiter = _limiter(redis, prefix, limit=100)
    decisions = [await limiter.hit("alice", "read") for _ in range(110)]
    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 100 and all(d.allowed for d in decisions[:100])
    assert [d.remaining for d in allowed] == list(range(99, -1, -1))
    refused = decisions[100:]
    assert all(not d.allowed and d.remaining == 0 for d in refused)
    assert all(1 <= d.reset_s <= 60 for d in refused)
    assert refused[0].headers()["Retry-After"] == str(refused[0].reset_s)
    assert await _counted(redis, prefix) == 100  # the refused ones did not reach Redis
    # Another principal has a budget of its own.
    assert (await limiter.hit("bob", "read")).allowed


async def test_gateways_sharing_redis_never_admit_more_than_the_limit(redis: Redis) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    gateways = [_limiter(redis, prefix, limit=200) for _ in range(3)]

    async def burst(limiter: RateLimiter) -> int:
        allowed = 0
        for _ in range(150):
            allowed += (await limiter.hit("alice", "read")).allowed
        return allowed

    admitted = await asyncio.gather(*(burst(limiter) for limiter in gateways))
    # 450 asked, 200 allowed: at most the limit, and what blocks held back is small.
    assert 200 - 2 * 3 <= sum(admitted) <= 200, admitted
    assert all(count > 0 for count in admitted)


async def test_a_new_window_starts_a_new_budget(redis: Redis) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    limiter = _limiter(redis, prefix, limit=2, window_s=1)
    assert [(await limiter.hit("alice", "read")).allowed for _ in range(3)] == [
        True,
        True,
        False,
    ]
    await asyncio.sleep(1.1)
    assert (await limiter.hit("alice", "read")).allowed
