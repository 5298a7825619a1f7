"""What the app's lifespan opens for access control: the JWT authenticator, the Redis rate
limiter, the credentials key ring and the internal credentials gRPC server."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom_gateway.credentials_service import (
    RunningCredentialsServer,
    start_credentials_server,
)
from agentloom_gateway.jwt_auth import JwtAuthenticator
from agentloom_gateway.ratelimit import RateLimiter
from agentloom_gateway.settings import DEV_JWT_SECRET, DEV_KEK, GatewaySettings
from agentloom_gateway.vault import KeyRing

log = logging.getLogger(__name__)


def keyring_from(settings: GatewaySettings) -> KeyRing:
    keks = {kek_id: value.get_secret_value() for kek_id, value in settings.credential_keks.items()}
    return KeyRing.from_base64(keks, settings.credential_kek_current)


def limiter_from(settings: GatewaySettings) -> RateLimiter:
    redis = Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
    )
    limits = {
        "read": settings.rate_limit_read,
        "write": settings.rate_limit_write,
        "execute": settings.rate_limit_execute,
        "admin": settings.rate_limit_admin,
    }
    return RateLimiter(
        redis,
        prefix=settings.rate_limit_prefix,
        window_s=settings.rate_limit_window_s,
        limits=limits,
    )


@dataclass
class Access:
    jwt: JwtAuthenticator
    limiter: RateLimiter
    keyring: KeyRing
    credentials_server: RunningCredentialsServer | None

    async def close(self, grace_s: float) -> None:
        if self.credentials_server is not None:
            await self.credentials_server.stop(grace_s)
        await self.limiter.close()


async def open_access(
    settings: GatewaySettings, sessions: async_sessionmaker[AsyncSession]
) -> Access:
    if settings.jwt_mode == "hs256" and settings.jwt_secret.get_secret_value() == DEV_JWT_SECRET:
        log.warning("AGENTLOOM_JWT_SECRET is the development default")
    if any(value.get_secret_value() == DEV_KEK for value in settings.credential_keks.values()):
        log.warning("AGENTLOOM_CREDENTIAL_KEKS holds the development key")
    keyring = keyring_from(settings)
    server = None
    if settings.credentials_grpc_addr:
        try:
            server = await start_credentials_server(
                settings.credentials_grpc_addr, sessions, keyring
            )
        except RuntimeError:
            # Loud, but the public API stays up: only run-time credential lookups fail.
            log.error("the credentials service cannot listen on %s", settings.credentials_grpc_addr)
    return Access(JwtAuthenticator(settings, sessions), limiter_from(settings), keyring, server)
