"""The SSRF guard: which addresses blocks may reach, checked at every connection."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from agentloom_blocks.net import BlockedAddressError, NetworkPolicy, fetch
from agentloom_blocks.sdk import BlockError, PlatformConfig, RetryableBlockError
from agentloom_devkit.fake_web import FakeWeb

REFUSED = [
    "127.0.0.1",
    "127.255.0.9",
    "10.1.2.3",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.169.254",
    "0.0.0.0",
    "224.0.0.251",
    "255.255.255.255",
    "::1",
    "::",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::7f00:1",
    "2002:7f00:1::",
    "fc00::1",
    "fe80::1",
    "ff02::1",
]
ALLOWED = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"]


@pytest.mark.parametrize("address", REFUSED)
def test_the_default_policy_refuses_internal_addresses(address: str) -> None:
    assert NetworkPolicy().refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ALLOWED)
def test_the_default_policy_allows_public_addresses(address: str) -> None:
    assert NetworkPolicy().refusal(ipaddress.ip_address(address)) is None


def test_allowing_private_networks_still_refuses_metadata_and_multicast() -> None:
    policy = NetworkPolicy(allow_private=True)
    for address in ("127.0.0.1", "10.0.0.1", "::1", "fc00::1"):
        assert policy.refusal(ipaddress.ip_address(address)) is None, address
    for address in ("169.254.169.254", "::ffff:127.0.0.1", "fe80::1", "224.0.0.1"):
        assert policy.refusal(ipaddress.ip_address(address)) is not None, address


def test_ipv4_mapped_addresses_are_refused_even_when_public() -> None:
    assert NetworkPolicy().refusal(ipaddress.ip_address("::ffff:8.8.8.8")) is not None


def test_allowed_networks_open_only_what_they_list() -> None:
    policy = NetworkPolicy(allowed_networks=["10.20.0.0/16"])
    assert policy.refusal(ipaddress.ip_address("10.20.3.4")) is None
    assert policy.refusal(ipaddress.ip_address("10.21.3.4")) is not None


@pytest.fixture(scope="module")
def second_web() -> Iterator[FakeWeb]:
    """A web server on 127.0.0.2: the 'public' side of the redirect test."""
    with FakeWeb(host="127.0.0.2") as server:
        yield server


def url_on(host: str, fake_web: FakeWeb, path: str = "/json") -> str:
    return f"http://{host}:{fake_web.port}{path}"


@pytest.mark.parametrize("host", ["127.0.0.1", "[::ffff:127.0.0.1]", "localhost", "[::1]"])
async def test_loopback_is_refused_without_the_operator_setting(
    fake_web: FakeWeb, host: str
) -> None:
    probe = f"/echo?probe={host}"
    with pytest.raises(BlockedAddressError, match="refused to connect") as caught:
        await fetch(PlatformConfig(), "GET", url_on(host, fake_web, probe))
    assert not caught.value.retryable
    assert all(r["query"].get("probe") != host for r in fake_web.requests())


@pytest.mark.parametrize("url", ["http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/"])
async def test_private_and_metadata_targets_are_refused_before_any_connection(url: str) -> None:
    with pytest.raises(BlockedAddressError):
        await fetch(PlatformConfig(), "GET", url, timeout_s=2)


async def test_the_operator_setting_reaches_a_local_server(fake_web: FakeWeb) -> None:
    config = PlatformConfig(allow_private_network=True)
    response, body = await fetch(config, "GET", f"{fake_web.url}/json")
    assert response.status_code == 200
    assert b"agentloom" in body


async def test_a_redirect_to_loopback_is_refused(fake_web: FakeWeb, second_web: FakeWeb) -> None:
    fake_web.clear_requests()
    config = PlatformConfig(allowed_networks=("127.0.0.2/32",))
    target = f"{fake_web.url}/echo"
    # The first hop is allowed and answers: the guard is what stops the second.
    response, _ = await fetch(config, "GET", f"{second_web.url}/json")
    assert response.status_code == 200

    with pytest.raises(BlockedAddressError, match="loopback"):
        await fetch(config, "GET", f"{second_web.url}/redirect?to={target}")
    assert fake_web.requests() == []


async def test_a_redirect_to_another_scheme_is_refused(second_web: FakeWeb) -> None:
    config = PlatformConfig(allowed_networks=("127.0.0.2/32",))
    with pytest.raises(BlockError, match=r"bad URL|only absolute"):
        await fetch(config, "GET", f"{second_web.url}/redirect?to=file:///etc/passwd")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/", "/relative"])
async def test_only_http_urls_are_fetched(url: str) -> None:
    with pytest.raises(BlockError, match="only absolute http"):
        await fetch(PlatformConfig(), "GET", url)


async def test_a_response_over_the_size_cap_is_cut_off(fake_web: FakeWeb) -> None:
    config = PlatformConfig(allow_private_network=True)
    _, body = await fetch(config, "GET", f"{fake_web.url}/bytes/1000", max_bytes=1000)
    assert len(body) == 1000
    with pytest.raises(BlockError, match="larger than 1000 bytes"):
        await fetch(config, "GET", f"{fake_web.url}/bytes/1001", max_bytes=1000)


async def test_a_slow_server_times_out_as_retryable(fake_web: FakeWeb) -> None:
    config = PlatformConfig(allow_private_network=True)
    with pytest.raises(RetryableBlockError, match=r"did not answer within 0\.3s"):
        await fetch(config, "GET", f"{fake_web.url}/slow/2", timeout_s=0.3)
