"""Who is calling: credentials from `Authorization: Bearer` or `X-API-Key`, checked by the
first authenticator that claims them: API keys (`agl_...`) here, JWTs in `jwt_auth`. Routes
only ever see a `Principal`; what it may do is checked by `access.requires`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal, Protocol

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
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
    connection in autocommit (a read needs no BEGIN and COMMIT round trips)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        pepper: bytes,
        touch_interval: timedelta,
    ) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._pepper = pepper
        self._touch_interval = touch_interval

    def accepts(self, credential: str) -> bool:
        return apikeys.looks_like_key(credential)

    async def authenticate(self, credential: str) -> Principal | None:
        if apikeys.parse(credential) is None:
            return None  # malformed or bad checksum: no database round trip
        async with self._engine.connect() as connection:
            found = await identity.authenticate_api_key(
                connection=connection,
                api_key=credential,
                pepper=self._pepper,
                touch_interval=self._touch_interval,
            )
        if found is None:
            return None
        return Principal(
            user_id=str(found.user_id),
            method="api_key",
            key_id=str(found.key_id),
            scopes=scopes.effective_scopes(found.role, found.scopes),
            role=found.role,
        )


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


async def require_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal:
    """The caller of an /api route; 401 when the credentials are missing or not valid (one
    body for every reason: bad signature, expired, revoked, suspended...).

    Kept on the request, so the router's dependency and a route's scope check share it."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    credential = bearer.credentials if bearer is not None else api_key
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


PrincipalDep = Annotated[Principal, Depends(require_principal)]
