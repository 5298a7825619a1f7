"""JWT authentication per RFC 8725. The verification key and its algorithm are fixed by the
operator's settings, never by the token: an HS256 shared secret (the local default, tokens
minted by `python -m agentloom_gateway mint-token`), or the RS256/ES256 keys of an identity
provider's JWKS at a configured URL (a token's `kid` only picks among those keys; `jku`,
`x5u` and embedded `jwk` headers are ignored). `exp`, `iss`, `aud` and `sub` are required;
`nbf` and `iat` are checked when present, with a small leeway. The user a subject names is
created on its first authenticated use."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom_gateway import identity, scopes
from agentloom_gateway.auth import Principal
from agentloom_gateway.errors import unavailable
from agentloom_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
# The algorithm each JWKS key type is pinned to when the key does not name one.
_ALGORITHMS: dict[tuple[object, object], str] = {("RSA", None): "RS256", ("EC", "P-256"): "ES256"}
_JWKS_ALGORITHMS = frozenset({"RS256", "ES256"})
# An unknown `kid` refetches the JWKS at most this often (key rotation without a storm).
_REFETCH_INTERVAL_S = 30.0
_MAX_SUBJECT = 255


@dataclass(frozen=True)
class PinnedKey:
    key: Any
    algorithm: str
    kid: str | None


def pin_jwks(document: dict[str, Any]) -> list[PinnedKey]:
    """The signing keys of a JWKS, each pinned to one algorithm; others are skipped."""
    pinned: list[PinnedKey] = []
    for entry in document.get("keys", []):
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        algorithm = entry.get("alg") or _ALGORITHMS.get((entry.get("kty"), entry.get("crv")))
        if algorithm not in _JWKS_ALGORITHMS:
            continue
        try:
            key = jwt.PyJWK.from_dict(entry, algorithm=algorithm)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            log.warning(
                "skipping an unusable JWKS key", extra={"fields": {"kid": entry.get("kid")}}
            )
            continue
        pinned.append(PinnedKey(key.key, algorithm, entry.get("kid")))
    return pinned


class JwksKeys:
    """The keys at the configured JWKS URL, cached and refreshed; stale keys are kept while
    the URL is unreachable."""

    def __init__(self, url: str, *, refresh_s: float, timeout_s: float = 5.0) -> None:
        self._url = url
        self._refresh_s = refresh_s
        self._timeout_s = timeout_s
        self._keys: list[PinnedKey] = []
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, *, refetch: bool = False) -> list[PinnedKey]:
        age = time.monotonic() - self._fetched_at
        if age < self._refresh_s and not (refetch and age > _REFETCH_INTERVAL_S):
            return self._keys
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            if age < self._refresh_s and not (refetch and age > _REFETCH_INTERVAL_S):
                return self._keys
            try:
                async with httpx.AsyncClient(timeout=self._timeout_s) as client:
                    response = await client.get(self._url, follow_redirects=False)
                    response.raise_for_status()
                    self._keys = pin_jwks(response.json())
                self._fetched_at = time.monotonic()
            except (httpx.HTTPError, ValueError) as error:
                log.warning("JWKS fetch failed: %s", type(error).__name__)
                if not self._keys:
                    raise
        return self._keys


class JwtAuthenticator:
    """Turns a valid JWT into the `Principal` of the user its subject names."""

    def __init__(
        self, settings: GatewaySettings, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._jwks: JwksKeys | None = None
        if settings.jwt_mode == "jwks":
            if not settings.jwt_jwks_url:
                raise ValueError("AGENTLOOM_JWT_JWKS_URL is required when JWT_MODE is jwks")
            self._jwks = JwksKeys(settings.jwt_jwks_url, refresh_s=settings.jwt_jwks_refresh_s)

    def accepts(self, credential: str) -> bool:
        return credential.count(".") == 2 and not credential.startswith("agl_")

    async def authenticate(self, credential: str) -> Principal | None:
        claims = await self.verify(credential)
        if claims is None:
            return None
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= _MAX_SUBJECT:
            return None
        email = claims.get("email") if isinstance(claims.get("email"), str) else None
        async with self._sessions.begin() as session:
            user = await identity.user_for_subject(session=session, subject=subject, email=email)
        if user.suspended_at is not None:
            return None
        return Principal(
            user_id=str(user.id),
            method="jwt",
            scopes=scopes.role_scopes(user.role),
            role=user.role,
        )

    async def verify(self, token: str) -> dict[str, Any] | None:
        """The token's claims when it is valid for this gateway, else None."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            return None
        for candidate in await self._candidates(header):
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    candidate.key,
                    algorithms=[candidate.algorithm],
                    audience=self._settings.jwt_audience,
                    issuer=self._settings.jwt_issuer,
                    leeway=self._settings.jwt_leeway_s,
                    options={"require": REQUIRED_CLAIMS},
                )
            except jwt.InvalidTokenError:
                continue
            return claims
        return None

    async def _candidates(self, header: dict[str, Any]) -> list[PinnedKey]:
        if self._jwks is None:
            secret = self._settings.jwt_secret.get_secret_value().encode()
            return [PinnedKey(secret, "HS256", None)]
        kid = header.get("kid")
        try:
            keys = await self._jwks.get()
            matching = [key for key in keys if kid is None or key.kid == kid]
            if not matching and kid is not None:
                keys = await self._jwks.get(refetch=True)
                matching = [key for key in keys if key.kid == kid]
        except (httpx.HTTPError, ValueError) as error:
            raise unavailable(
                self._settings.retry_after_s, "the identity provider is unavailable"
            ) from error
        return matching


def mint_token(
    settings: GatewaySettings,
    *,
    subject: str,
    ttl: timedelta = timedelta(hours=1),
    now: datetime | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """An HS256 token the local default accepts (for scripts, tests and development)."""
    issued = now or datetime.now(UTC)
    claims = {
        "sub": subject,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl,
        "jti": uuid.uuid4().hex,
        **(extra or {}),
    }
    secret = settings.jwt_secret.get_secret_value()
    return jwt.encode(claims, secret, algorithm="HS256")
