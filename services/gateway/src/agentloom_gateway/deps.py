"""Typed dependencies of the routes: everything comes from the app's `Resources`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from agentloom_gateway.auth import Authenticator
from agentloom_gateway.clients import Services
from agentloom_gateway.ratelimit import RateLimiter
from agentloom_gateway.settings import GatewaySettings
from agentloom_gateway.vault import KeyRing


@dataclass
class Resources:
    """What the lifespan opens and closes; stored on `app.state.resources`."""

    settings: GatewaySettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    services: Services
    authenticators: list[Authenticator] = field(default_factory=list)
    limiter: RateLimiter | None = None
    keyring: KeyRing | None = None


def _resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


# The dependencies are `async def` although they do no I/O: FastAPI runs a plain `def`
# dependency in a worker thread, a thread hand-off per dependency per request (profiled).
async def get_resources(request: Request) -> Resources:
    return _resources(request)


async def get_settings(request: Request) -> GatewaySettings:
    return _resources(request).settings


async def get_services(request: Request) -> Services:
    return _resources(request).services


async def get_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    return _resources(request).sessions


async def get_keyring(request: Request) -> KeyRing:
    keyring = _resources(request).keyring
    if keyring is None:
        raise RuntimeError("the credentials vault is not configured")
    return keyring


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
ServicesDep = Annotated[Services, Depends(get_services)]
# Routes open one transaction explicitly: `async with sessions.begin() as session`.
SessionsDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessions)]
KeyRingDep = Annotated[KeyRing, Depends(get_keyring)]
