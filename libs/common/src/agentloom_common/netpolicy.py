"""Which network addresses the platform may connect to on a user's behalf (the SSRF guard).

Shared by the blocks (HTTP, e-mail) and by outgoing webhooks. `AddressPolicy.resolve`
resolves a host once and checks every address it answers: loopback, private, link-local
(cloud metadata), multicast, reserved and IPv4-mapped/-translated IPv6 addresses are refused
(link-local, multicast and IPv4-in-IPv6 even when the operator allows private networks; only
`allowed_networks` opens those). Callers then connect to the address that was checked, so a
second DNS answer cannot swap the target. Standard library only: each service brings its own
HTTP client around it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """The target resolves to an address the policy refuses."""


class HostUnresolvable(Exception):
    """The target's host name does not resolve."""


class AddressPolicy:
    """Which addresses may be reached; an operator may allow private networks (self-hosting)
    or open exact networks with `allowed_networks`."""

    def __init__(self, allow_private: bool = False, allowed_networks: Iterable[str] = ()) -> None:
        self.allow_private = allow_private
        self.allowed_networks = [ipaddress.ip_network(n, strict=False) for n in allowed_networks]

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
        """The host's addresses, all checked; one refused address refuses the host.

        Raises `HostUnresolvable` or `AddressRefused`; subclasses may translate them.
        """
        host = host.strip("[]")
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise HostUnresolvable(f"cannot resolve host {host!r}: {exc.strerror}") from None
            addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        for address in addresses:
            reason = self.refusal(address)
            if reason is not None:
                raise AddressRefused(
                    f"refused to connect to {host!r}: it resolves to {reason} ({address})"
                )
        return addresses


def _nat64(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
