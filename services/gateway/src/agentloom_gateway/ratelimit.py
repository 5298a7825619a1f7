"""Fixed-window rate limits in Redis: one atomic Lua script per request (INCR, and the
window's expiry set on its first hit), per principal and per route class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

# KEYS[1]: the window's counter; ARGV[1]: the window in ms. Returns {count, ms left}.
_HIT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""

ROUTE_CLASSES = ("read", "write", "execute", "admin")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        """The RateLimit-* fields (IETF httpapi draft), plus Retry-After when refused."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_s)
        return headers


class RateLimiter:
    """Counts a principal's requests per route class; Redis errors propagate to the caller,
    which decides whether to fail open (reads) or closed (creating executions)."""

    def __init__(self, redis: Redis, *, prefix: str, window_s: int, limits: dict[str, int]) -> None:
        self.redis = redis
        self._prefix = prefix
        self._window_ms = max(1, window_s) * 1000
        self._limits = limits
        self._script = redis.register_script(_HIT)

    async def hit(self, principal_key: str, route_class: str) -> Decision:
        limit = self._limits[route_class]
        key = f"{self._prefix}{route_class}:{principal_key}"
        raw = cast("list[Any]", await self._script(keys=[key], args=[self._window_ms]))
        count, ttl_ms = int(raw[0]), int(raw[1])
        reset_s = max(1, -(-ttl_ms // 1000))
        return Decision(count <= limit, limit, max(0, limit - count), reset_s)

    async def close(self) -> None:
        await self.redis.aclose()
