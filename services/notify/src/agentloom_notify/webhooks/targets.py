"""Where webhooks may be sent: the shared SSRF policy, checked when an endpoint is created
and again at every connection (the client connects to the address it checked, so DNS cannot
point a registered host at the internal network later). Redirects are never followed."""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from agentloom_common.netpolicy import AddressPolicy, AddressRefused, HostUnresolvable
from agentloom_notify.webhooks.domain import field_error

REFUSED_REASON = "WEBHOOK_URL_REFUSED"


async def check_target(url: str, policy: AddressPolicy) -> None:
    """Refuse a URL whose host does not resolve or resolves to a refused address."""
    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        await policy.resolve(parsed.host, port)
    except (AddressRefused, HostUnresolvable) as error:
        raise field_error("url", str(error), reason=REFUSED_REASON) from None


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks each host, then connects to the checked address itself."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._policy.resolve(host, port)
        except (AddressRefused, HostUnresolvable) as error:
            raise httpcore.ConnectError(str(error)) from None
        # TLS still verifies and sends SNI for `host`: httpcore passes it to start_tls.
        return await self._inner.connect_tcp(
            str(addresses[0]), port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: AddressPolicy, max_connections: int) -> None:
        super().__init__()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl.create_default_context(),
            max_connections=max_connections,
            network_backend=_GuardedBackend(policy),
        )


def guarded_client(
    policy: AddressPolicy, *, timeout_s: float, max_connections: int = 100
) -> httpx.AsyncClient:
    """An httpx client for deliveries: every connection passes the guard, no redirects, no
    proxies from the environment."""
    return httpx.AsyncClient(
        transport=_GuardedTransport(policy, max_connections),
        timeout=timeout_s,
        follow_redirects=False,
        trust_env=False,
    )
