"""Outgoing connections for blocks, guarded against SSRF.

Every TCP connection a block opens through `guarded_client` resolves the host once, refuses
loopback, private, link-local (cloud metadata), multicast, reserved and IPv4-mapped/-translated
IPv6 addresses (link-local, multicast and IPv4-in-IPv6 even when the operator allows private
networks; only `allowed_networks` opens those), and connects to the address it checked (no
second lookup an attacker's DNS could answer differently). Redirects open new connections, so
each hop is checked again. Responses are read up to a size cap.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from agentloom_blocks.sdk import BlockError, PlatformConfig, RetryableBlockError
from agentloom_common.netpolicy import AddressPolicy, AddressRefused, HostUnresolvable, IPAddress

MAX_REDIRECTS = 5


class BlockedAddressError(BlockError):
    """The target resolves to an address blocks may not reach."""


class NetworkPolicy(AddressPolicy):
    """Which addresses blocks may connect to (the shared policy, with block errors)."""

    @classmethod
    def from_config(cls, config: PlatformConfig) -> NetworkPolicy:
        return cls(config.allow_private_network, config.allowed_networks)

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The host's addresses, all checked; one refused address refuses the host."""
        try:
            return await super().resolve(host, port)
        except HostUnresolvable as exc:
            raise BlockError(str(exc)) from None
        except AddressRefused as exc:
            raise BlockedAddressError(str(exc)) from None


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks each host, then connects to the checked address itself."""

    def __init__(self, policy: NetworkPolicy) -> None:
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
        addresses = await self._policy.resolve(host, port)
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
        raise BlockedAddressError("unix sockets are not reachable from blocks")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: NetworkPolicy) -> None:
        super().__init__()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl.create_default_context(), network_backend=_GuardedBackend(policy)
        )


def guarded_client(
    config: PlatformConfig, *, timeout_s: float | None = None, follow_redirects: bool = True
) -> httpx.AsyncClient:
    """An httpx client whose every connection passes the SSRF guard; no proxies from env."""
    return httpx.AsyncClient(
        transport=_GuardedTransport(NetworkPolicy.from_config(config)),
        timeout=timeout_s if timeout_s is not None else config.http_timeout_s,
        follow_redirects=follow_redirects,
        max_redirects=MAX_REDIRECTS,
        trust_env=False,
    )


def check_url(url: str) -> httpx.URL:
    """The URL parsed, if it is absolute http(s); a BlockError otherwise."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise BlockError(f"invalid URL {url!r}: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise BlockError(f"only absolute http:// and https:// URLs are allowed, not {url!r}")
    return parsed


async def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The response body, or a BlockError once it passes `max_bytes`."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise BlockError(f"the response is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def fetch(
    config: PlatformConfig,
    method: str,
    url: str,
    *,
    timeout_s: float | None = None,
    max_bytes: int | None = None,
    follow_redirects: bool = True,
    **request: Any,
) -> tuple[httpx.Response, bytes]:
    """One guarded request; transport failures map to (retryable) BlockErrors."""
    check_url(url)
    timeout = timeout_s if timeout_s is not None else config.http_timeout_s
    limit = max_bytes if max_bytes is not None else config.http_max_response_bytes
    try:
        async with (
            asyncio.timeout(timeout),
            guarded_client(config, timeout_s=timeout, follow_redirects=follow_redirects) as client,
            client.stream(method, url, **request) as response,
        ):
            body = await read_capped(response, limit)
    except TimeoutError:
        raise RetryableBlockError(f"{url} did not answer within {timeout:g}s") from None
    except httpx.TimeoutException:
        raise RetryableBlockError(f"{url} did not answer within {timeout:g}s") from None
    except httpx.TooManyRedirects:
        raise BlockError(f"{url} redirected more than {MAX_REDIRECTS} times") from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise BlockError(f"bad URL {url!r}: {exc}") from None
    except httpx.TransportError as exc:
        raise RetryableBlockError(f"could not reach {url}: {exc!r}") from None
    return response, body
