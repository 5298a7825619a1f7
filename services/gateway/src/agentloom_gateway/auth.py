"""Who is calling: credentials from `Authorization: Bearer` or `X-API-Key`, checked by the
first authenticator that claims them: API keys (`agl_...`) here, JWTs in `jwt_auth`. Routes
only ever see a `Principal`; what it may do is checked by `access.requires`."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Protocol

from fastapi import Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.security import APIKeyHeader, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine

from agentloom_gateway import apikeys, identity, scopes
from agentloom_gateway.errors import ApiProblem


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, as every route sees it."""

    user_id: str
    method: Literal["api_key", "jwt"]
    key_id: str | None = None
    scopes: tuple[str, ...] = ()
    role: str = "user"

    @property
    def rate_key(self) -> str:
        """Whose budget a request spends: the API key's, or the user's for a JWT."""
        return f"key:{self.key_id}" if self.key_id else f"user:{self.user_id}"


class Authenticator(Protocol):
    def accepts(self, credential: str) -> bool:
        """True when the credential has this authenticator's shape (checked without I/O)."""
        ...

    async def authenticate(self, credential: str) -> Principal | None:
        """The principal for a valid credential, None for an invalid one."""
        ...


class ApiKeyAuthenticator:
    """Verifies `agl_...` keys against the identity schema: one indexed lookup, on a
    connection in autocommit (a read needs no BEGIN and COMMIT round trips).

    A key found valid is remembered for `cache_s` (by a hash of the whole key, never the
    key itself): the lookup was a third of the gateway's CPU per request (bench, issue 8).
    Its expiry is still checked on every use; revoking, suspending or changing a key, or
    suspending its user, through this gateway forgets the user's keys at once
    (`forget_user`); through another replica or the admin commands it takes effect within
    `cache_s`. 0 turns the cache off."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        pepper: bytes,
        touch_interval: timedelta,
        cache_s: float = 0.0,
        cache_size: int = 10_000,
    ) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._pepper = pepper
        self._touch_interval = touch_interval
        self._cache_s = cache_s
        self._cache_size = cache_size
        # hash of the key -> (valid until (monotonic), principal, the key's expiry)
        self._cache: OrderedDict[bytes, tuple[float, Principal, datetime | None]] = OrderedDict()
        # Lookups in flight, by hash of the key: requests that find the key unknown or
        # expired meanwhile wait for the same answer (at 200 requests/s each expiry sent a
        # burst of identical lookups to the database).
        self._lookups: dict[bytes, asyncio.Future[Principal | None]] = {}
        # Bumped by `forget_user`: a lookup that began before keeps its answer to itself.
        self._generation = 0

    def accepts(self, credential: str) -> bool:
        return apikeys.looks_like_key(credential)

    async def authenticate(self, credential: str) -> Principal | None:
        if apikeys.parse(credential) is None:
            return None  # malformed or bad checksum: no database round trip
        cache_key = hashlib.sha256(credential.encode()).digest()
        held = self._cache.get(cache_key)
        if held is not None:
            until, principal, expires_at = held
            if time.monotonic() < until and (expires_at is None or expires_at > datetime.now(UTC)):
                return principal
            del self._cache[cache_key]
        if self._cache_s <= 0:
            return await self._look_up(credential, cache_key)
        lookup = self._lookups.get(cache_key)
        if lookup is None:
            lookup = asyncio.ensure_future(self._look_up(credential, cache_key))
            self._lookups[cache_key] = lookup
            lookup.add_done_callback(lambda done: self._lookup_done(cache_key, done))
        # Shielded: one caller giving up does not cancel the others' answer.
        return await asyncio.shield(lookup)

    def _lookup_done(self, cache_key: bytes, done: asyncio.Future[Principal | None]) -> None:
        if self._lookups.get(cache_key) is done:
            del self._lookups[cache_key]
        if not done.cancelled():
            done.exception()  # retrieved: a failed lookup is raised to its callers

    async def _look_up(self, credential: str, cache_key: bytes) -> Principal | None:
        generation = self._generation
        async with self._engine.connect() as connection:
            found = await identity.authenticate_api_key(
                connection=connection,
                api_key=credential,
                pepper=self._pepper,
                touch_interval=self._touch_interval,
            )
        if found is None:
            return None
        principal = Principal(
            user_id=str(found.user_id),
            method="api_key",
            key_id=str(found.key_id),
            scopes=scopes.effective_scopes(found.role, found.scopes),
            role=found.role,
        )
        if self._cache_s > 0 and generation == self._generation:
            self._cache[cache_key] = (
                time.monotonic() + self._cache_s,
                principal,
                found.expires_at,
            )
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return principal

    def forget_user(self, user_id: str) -> None:
        """Drop every remembered key of `user_id` (after a change to its keys or itself)."""
        for cache_key in [k for k, (_, p, _) in self._cache.items() if p.user_id == user_id]:
            del self._cache[cache_key]
        # Whose key a lookup in flight is for is not known yet: later requests ask again,
        # and what those in flight find is not remembered.
        self._lookups.clear()
        self._generation += 1


def forget_user(request: Request, user_id: str) -> None:
    """After a change to a user's keys or to the user: no authenticator of this gateway
    keeps answering from what it remembered."""
    for authenticator in request.app.state.resources.authenticators:
        forget = getattr(authenticator, "forget_user", None)
        if forget is not None:
            forget(str(user_id))


bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="BearerAuth",
    bearerFormat="agl API key or JWT",
    description="`Authorization: Bearer agl_...` with an API key, or `Bearer <JWT>`.",
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKeyAuth",
    description="`X-API-Key: agl_...` with an API key.",
)


def unauthenticated(detail: str) -> ApiProblem:
    return ApiProblem(401, "UNAUTHENTICATED", detail, {"WWW-Authenticate": "Bearer"})


async def require_principal(request: Request) -> Principal:
    """The caller of an /api route; 401 when the credentials are missing or not valid (one
    body for every reason: bad signature, expired, revoked, suspended...).

    Reads `Authorization: Bearer` (else `X-API-Key`) itself: as sub-dependencies the two
    security schemes were solved again wherever a route refers to the principal (the
    router, the scope check, the handler), a third of FastAPI's dependency work per
    request. Routers declare the schemes for OpenAPI (`principal_dependencies`).

    Kept on the request, so the router's dependency and a route's scope check share it."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    credential = bearer_credential(request.headers.get("Authorization"))
    if credential is None:
        credential = request.headers.get("X-API-Key")
    if not credential:
        raise unauthenticated("credentials are required")
    authenticators: list[Authenticator] = request.app.state.resources.authenticators
    for authenticator in authenticators:
        if authenticator.accepts(credential):
            principal = await authenticator.authenticate(credential)
            if principal is not None:
                request.state.principal = principal
                return principal
            break
    raise unauthenticated("the credentials are not valid")


def bearer_credential(authorization: str | None) -> str | None:
    """The credentials of an `Authorization: Bearer <credentials>` header, as `HTTPBearer`
    reads them; None for no header, another scheme, or no credentials."""
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials


PrincipalDep = Annotated[Principal, Depends(require_principal)]


def principal_dependencies() -> list[Any]:
    """A router's `dependencies` for routes that need a principal. The two security schemes
    it reads are declared in OpenAPI by `declare_security` rather than as dependencies: as
    `Security(...)` dependencies FastAPI solved and called both on every request, for a
    header `require_principal` reads itself (under bench W4, dependency solving was 28% of
    the gateway's CPU)."""
    return [Depends(require_principal)]


def dependency_calls(route: Any) -> Iterator[Any]:
    """The callables of every dependency in a route's (or a `RouteContext`'s) tree."""
    dependant = getattr(route, "dependant", None)
    pending = list(dependant.dependencies) if dependant is not None else []
    while pending:
        dependant = pending.pop()
        yield dependant.call
        pending.extend(dependant.dependencies)


def needs_principal(route: Any) -> bool:
    """Whether `require_principal` is anywhere in a route's dependency tree."""
    return any(call is require_principal for call in dependency_calls(route))


def declare_security(routes: Iterable[Any], document: dict[str, Any]) -> None:
    """The two schemes in `components.securitySchemes`, and either one as the `security` of
    every operation that needs a principal (unless it declares its own), as FastAPI wrote
    them for `Security(bearer_scheme)` and `Security(api_key_scheme)` dependencies."""
    paths = document.get("paths", {})
    declared = False
    for route in routes:
        if not needs_principal(route):
            continue
        operations = paths.get(getattr(route, "path_format", None) or "", {})
        for method in getattr(route, "methods", None) or ():
            operation = operations.get(method.lower())
            if operation is not None and "security" not in operation:
                operation["security"] = [{scheme.scheme_name: []} for scheme in _SCHEMES]
                declared = True
    if declared:
        components = document.setdefault("components", {})
        schemes = components.setdefault("securitySchemes", {})
        for scheme in _SCHEMES:
            schemes[scheme.scheme_name] = jsonable_encoder(
                scheme.model, by_alias=True, exclude_none=True
            )


_SCHEMES = (bearer_scheme, api_key_scheme)
