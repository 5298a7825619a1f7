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
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from agentloom_blocks.sdk import BlockError, PlatformConfig, RetryableBlockError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_REDIRECTS = 5


class BlockedAddressError(BlockError):
    """The target resolves to an address blocks may not reach."""


class NetworkPolicy:
    """Which addresses blocks may connect to."""

    def __init__(self, allow_private: bool = False, allowed_networks: Iterable[str] = ()) -> None:
        self.allow_private = allow_private
        self.allowed_networks = [ipaddress.ip_network(n, strict=False) for n in allowed_networks]

    @classmethod
    def from_config(cls, config: PlatformConfig) -> NetworkPolicy:
        return cls(config.allow_private_network, config.allowed_networks)

    def refusal(self, address: IPAddress) -> str | None:
        """Why `address` is refused, or None when it may be reached."""
        if any(address in network for network in self.allowed_networks):
            return None
        if isinstance(address, ipaddress.IPv6Address):
            # DNS has no business answering these; they smuggle IPv4 targets past checks.
            embedded = address.ipv4_mapped or _nat64(address) or address.sixtofour
            if embedded is not None:
                return f"an IPv4 address embedded in IPv6 ({embedded})"
        if address.is_multicast or address.is_unspecified:
            return "a multicast or unspecified address"
        # Cloud metadata lives here: refused even when private networks are allowed.
        if address.is_link_local:
            return "a link-local (metadata) address"
        if self.allow_private:
            return None
        if address.is_loopback:
            return "a loopback address"
        if address.is_private or address.is_reserved or not address.is_global:
            return "a private or reserved address"
        return None

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The host's addresses, all checked; one refused address refuses the host."""
        host = host.strip("[]")
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise BlockError(f"cannot resolve host {host!r}: {exc.strerror}") from None
            addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        for address in addresses:
            reason = self.refusal(address)
            if reason is not None:
                raise BlockedAddressError(
                    f"refused to connect to {host!r}: it resolves to {reason} ({address})"
                )
        return addresses


def _nat64(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


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
