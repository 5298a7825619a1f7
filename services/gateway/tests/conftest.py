"""Gateway fixtures: the identity schema migrated into the session's database, the real app
(lifespan included) behind httpx, and a user with an API key. Downstream services point at
addresses nobody listens on, so a route that reaches one answers 503."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom_common.db import create_engine, create_session_factory
from agentloom_common.migrations import upgrade
from agentloom_gateway import identity
from agentloom_gateway.app import create_app
from agentloom_gateway.settings import DEV_KEK, GatewaySettings

TEST_JWT_SECRET = "test-jwt-secret-of-at-least-32-bytes-long"
NEXT_KEK = base64.b64encode(b"next-key-encryption-key-32-bytes").decode()


def unused_address() -> str:
    """A loopback host:port nobody listens on (the OS just handed it out and took it back)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture(scope="session")
async def identity_url(database_url: str) -> str:
    await asyncio.to_thread(upgrade, database_url, "agentloom_gateway", "identity")
    return database_url


@pytest.fixture(scope="session")
def settings(identity_url: str) -> GatewaySettings:
    return GatewaySettings(
        database_url=identity_url,
        graphs_addr=unused_address(),
        blocks_addr=unused_address(),
        billing_addr=unused_address(),
        executor_addr=unused_address(),
        grpc_deadline_s=2.0,
        api_key_pepper="test-pepper",
        jwt_secret=TEST_JWT_SECRET,
        credentials_grpc_addr="127.0.0.1:0",
        # "next" is configured but not current: the rotation test makes it current.
        credential_keks={"dev": DEV_KEK, "next": NEXT_KEK},
        credential_kek_current="dev",
        rate_limit_prefix=f"test:{uuid.uuid4().hex}:ratelimit:",
    )


@pytest.fixture(scope="session")
def pepper(settings: GatewaySettings) -> bytes:
    return settings.api_key_pepper.get_secret_value().encode()


@pytest.fixture(scope="session")
async def sessions(identity_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(identity_url, pool_size=2)
    yield create_session_factory(engine)
    await engine.dispose()


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan entered, and a client talking to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


@pytest.fixture(scope="session")
def app(settings: GatewaySettings) -> FastAPI:
    return create_app(settings)


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as client:
        yield client


@dataclass(frozen=True)
class Caller:
    user_id: str
    email: str
    api_key: str
    key_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


async def new_caller(
    sessions: async_sessionmaker[AsyncSession], pepper: bytes, **key_options: object
) -> Caller:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    async with sessions.begin() as session:
        user = await identity.create_user(session=session, email=email, name="Test User")
        created = await identity.create_api_key(
            session=session,
            user_id=user.id,
            name="test",
            pepper=pepper,
            **key_options,  # type: ignore[arg-type]
        )
    return Caller(str(user.id), email, created.api_key, str(created.id))


MakeCaller = Callable[..., Awaitable[Caller]]


@pytest.fixture
def make_caller(sessions: async_sessionmaker[AsyncSession], pepper: bytes) -> MakeCaller:
    """Creates a user with a key: `await make_caller(expires_at=..., pepper=...)`."""

    async def make(*, pepper: bytes = pepper, **key_options: object) -> Caller:
        return await new_caller(sessions, pepper, **key_options)

    return make


@pytest.fixture
async def caller(make_caller: MakeCaller) -> Caller:
    return await make_caller()
