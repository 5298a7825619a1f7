"""grpc.aio client channels that forward the request id and always set a deadline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from agentloom_common.grpc_server import REQUEST_ID_KEY
from agentloom_common.logging import request_id_var


class _ClientInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, deadline_s: float) -> None:
        self._deadline_s = deadline_s

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        metadata = list(client_call_details.metadata or ())
        request_id = request_id_var.get()
        if request_id:
            metadata.append((REQUEST_ID_KEY, request_id))
        timeout = client_call_details.timeout
        if timeout is None:
            timeout = self._deadline_s
        details = grpc.aio.ClientCallDetails(
            method=client_call_details.method,
            timeout=timeout,
            metadata=grpc.aio.Metadata(*metadata),
            credentials=client_call_details.credentials,
            wait_for_ready=client_call_details.wait_for_ready,
        )
        return await continuation(details, request)


def create_channel(address: str, *, deadline_s: float) -> grpc.aio.Channel:
    """An insecure channel (services talk on a private network) with default deadlines."""
    return grpc.aio.insecure_channel(
        address,
        interceptors=[_ClientInterceptor(deadline_s)],
        options=[("grpc.keepalive_time_ms", 30_000), ("grpc.enable_retries", 1)],
    )
