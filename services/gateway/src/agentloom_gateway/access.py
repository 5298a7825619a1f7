"""Authorization of /api routes: each declares the scope it needs and its rate-limit class
with `dependencies=[requires("graphs:read")]`. A principal lacking the scope gets 403; one
past its budget gets 429 with `Retry-After` and `RateLimit-*`. When Redis is down, the
`execute` class fails closed (503) and every other class is let through."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute, RouteContext
from redis.exceptions import RedisError

from agentloom_gateway.auth import Principal, PrincipalDep, dependency_calls
from agentloom_gateway.errors import ApiProblem, unavailable
from agentloom_gateway.ratelimit import ROUTE_CLASSES, RateLimiter
from agentloom_gateway.scopes import ALL_SCOPES

log = logging.getLogger(__name__)


class ScopeRequirement:
    """The dependency behind `requires`; routes are found by it in tests and in OpenAPI."""

    def __init__(self, scope: str, route_class: str | None) -> None:
        if scope not in ALL_SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        if route_class is not None and route_class not in ROUTE_CLASSES:
            raise ValueError(f"unknown route class {route_class!r}")
        self.scope = scope
        self.route_class = route_class

    async def __call__(
        self, request: Request, response: Response, principal: PrincipalDep
    ) -> Principal:
        if self.scope not in principal.scopes:
            raise ApiProblem(
                403, "INSUFFICIENT_SCOPE", f"the credentials lack the scope {self.scope!r}"
            )
        route_class = self.route_class or ("read" if request.method == "GET" else "write")
        limiter: RateLimiter | None = request.app.state.resources.limiter
        if limiter is not None:
            await _spend(limiter, principal, route_class, request, response)
        return principal


async def _spend(
    limiter: RateLimiter,
    principal: Principal,
    route_class: str,
    request: Request,
    response: Response,
) -> None:
    try:
        decision = await limiter.hit(principal.rate_key, route_class)
    except (RedisError, OSError) as error:
        log.warning("rate limits unavailable: %s", type(error).__name__)
        if route_class == "execute":
            retry_after: int = request.app.state.resources.settings.retry_after_s
            raise unavailable(retry_after, "rate limiting is unavailable") from error
        return
    if not decision.allowed:
        raise ApiProblem(429, "RATE_LIMITED", "too many requests: retry later", decision.headers())
    response.headers.update(decision.headers())


def requires(scope: str, *, route_class: str | None = None) -> Any:
    """`Depends` for a route's `dependencies`: the scope it needs and its rate-limit class
    (default: `read` for GET, `write` otherwise)."""
    return Depends(ScopeRequirement(scope, route_class))


def route_requirement(route: APIRoute | RouteContext) -> ScopeRequirement | None:
    """The scope requirement a route (or a `RouteContext` of an included one) declares,
    wherever it sits in its dependency tree."""
    for call in dependency_calls(route):
        if isinstance(call, ScopeRequirement):
            return call
    return None
