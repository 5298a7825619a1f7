"""The internal gRPC `agentloom.identity.v1.CredentialsService`: the runner asks for a
user's decrypted credential at run time. It answers only for the credential's owner (the
user the execution runs as); unknown and foreign ids are the same NOT_FOUND."""

from __future__ import annotations

import asyncio
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom.identity.v1 import credentials_pb2, credentials_pb2_grpc
from agentloom_common.errors import NotFound, ServiceError
from agentloom_common.grpc_server import REQUEST_ID_KEY
from agentloom_common.logging import request_id_var
from agentloom_gateway import credentials
from agentloom_gateway.vault import KeyRing, VaultError

log = logging.getLogger(__name__)

SERVICE_NAME = credentials_pb2.DESCRIPTOR.services_by_name["CredentialsService"].full_name


class CredentialUnreadable(ServiceError):
    code = grpc.StatusCode.INTERNAL
    reason = "CREDENTIAL_UNREADABLE"


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("no such credential", reason="CREDENTIAL_NOT_FOUND") from None


class CredentialsServicer(credentials_pb2_grpc.CredentialsServiceServicer):
    """Served by a thread pool (not on the gateway's event loop, so gRPC polling never
    competes with HTTP serving); each call runs its database work on the app's loop."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        keyring: KeyRing,
        loop: asyncio.AbstractEventLoop,
        timeout_s: float,
    ) -> None:
        self._sessions = sessions
        self._keyring = keyring
        self._loop = loop
        self._timeout_s = timeout_s

    def GetCredential(
        self, request: credentials_pb2.GetCredentialRequest, context: grpc.ServicerContext
    ) -> credentials_pb2.GetCredentialResponse:
        metadata = dict(context.invocation_metadata() or ())
        try:
            future = asyncio.run_coroutine_threadsafe(
                self._get(request, str(metadata.get(REQUEST_ID_KEY) or uuid.uuid4())), self._loop
            )
            return future.result(timeout=self._timeout_s)
        except ServiceError as error:
            context.abort_with_status(rpc_status.to_status(error.to_status()))
        except Exception:
            log.exception("unhandled error in GetCredential")
            context.abort(grpc.StatusCode.INTERNAL, "internal error")
        raise AssertionError("unreachable: abort raises")

    async def _get(
        self, request: credentials_pb2.GetCredentialRequest, request_id: str
    ) -> credentials_pb2.GetCredentialResponse:
        token = request_id_var.set(request_id)
        try:
            return await self._reveal(request)
        finally:
            request_id_var.reset(token)

    async def _reveal(
        self, request: credentials_pb2.GetCredentialRequest
    ) -> credentials_pb2.GetCredentialResponse:
        user_id, credential_id = _uuid(request.user_id), _uuid(request.credential_id)
        try:
            async with self._sessions.begin() as session:
                found = await credentials.reveal_credential(
                    session=session,
                    keyring=self._keyring,
                    user_id=user_id,
                    credential_id=credential_id,
                )
        except VaultError as error:
            raise CredentialUnreadable("the credential cannot be decrypted") from error
        if found is None:
            raise NotFound("no such credential", reason="CREDENTIAL_NOT_FOUND")
        row, secrets = found
        return credentials_pb2.GetCredentialResponse(
            credential_id=str(row.id),
            provider=row.provider,
            kind=row.kind,
            title=row.title,
            secrets=secrets,
            attributes={str(k): str(v) for k, v in row.attributes.items()},
        )


@dataclass
class RunningCredentialsServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer

    async def stop(self, grace_s: float) -> None:
        """NOT_SERVING, then let in-flight calls finish within grace_s."""
        self.health.enter_graceful_shutdown()
        await asyncio.to_thread(self.server.stop(grace_s).wait)


async def start_credentials_server(
    address: str,
    sessions: async_sessionmaker[AsyncSession],
    keyring: KeyRing,
    *,
    timeout_s: float = 10.0,
    workers: int = 8,
) -> RunningCredentialsServer:
    """Serve on `address` (port 0 picks a free one); raises RuntimeError when it cannot
    bind. Must be called from the app's event loop (calls run their queries on it)."""
    servicer = CredentialsServicer(sessions, keyring, asyncio.get_running_loop(), timeout_s)
    server = grpc.server(ThreadPoolExecutor(max_workers=workers, thread_name_prefix="credentials"))
    credentials_pb2_grpc.add_CredentialsServiceServicer_to_server(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"cannot listen on {address}")
    server.start()
    for name in (SERVICE_NAME, ""):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("credentials service serving", extra={"fields": {"port": port}})
    return RunningCredentialsServer(server, port, health_servicer)
