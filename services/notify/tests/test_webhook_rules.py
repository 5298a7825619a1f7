"""Pure rules of outgoing webhooks: filters, URLs, the retry schedule, secrets at rest, and
the SSRF guard on targets."""

from __future__ import annotations

import base64
import random
import uuid
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from agentloom_common.errors import InvalidArgument
from agentloom_common.netpolicy import AddressPolicy
from agentloom_notify.webhooks import domain
from agentloom_notify.webhooks.delivery import signed_headers
from agentloom_notify.webhooks.sealing import SealingError, SecretBox
from agentloom_notify.webhooks.targets import REFUSED_REASON, check_target

KEY_A = base64.b64encode(b"a" * 32).decode()
KEY_B = base64.b64encode(b"b" * 32).decode()


def test_event_types_default_to_everything_and_refuse_unknown_ones() -> None:
    assert domain.event_types([]) == ["*"]
    assert domain.event_types(["node.output", "node.output"]) == ["node.output"]
    with pytest.raises(InvalidArgument) as error:
        domain.event_types(["node.output", "graph.deleted"])
    assert error.value.metadata == {"field": "event_types"}
    with pytest.raises(InvalidArgument):
        domain.event_types(["*", "node.status"])


def test_an_endpoint_matches_its_types_or_everything() -> None:
    assert domain.matches(["*"], "node.output")
    assert domain.matches(["node.status"], "node.status")
    assert not domain.matches(["node.status"], "node.output")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "/relative/hook",
        "https://user:pw@example.com/hook",
        "https://example.com/hook#frag",
        "https://example.com/a b",
        "https://example.com/" + "x" * 3000,
    ],
)
def test_bad_urls_are_refused_naming_the_field(url: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        domain.check_url(url, max_length=2048)
    assert error.value.metadata == {"field": "url"}


def test_the_retry_schedule_scales_jitters_and_ends() -> None:
    schedule = (5.0, 300.0, 1800.0)
    assert domain.retry_delay_s(1, schedule) == 5.0
    assert domain.retry_delay_s(3, schedule, scale=0.01) == pytest.approx(18.0)
    assert domain.retry_delay_s(4, schedule) is None
    rng = random.Random(7)
    delays = {domain.retry_delay_s(2, schedule, jitter=0.2, rng=rng) for _ in range(50)}
    assert len(delays) > 1
    assert all(d is not None and 240.0 <= d <= 360.0 for d in delays)


def test_secrets_and_ids_have_the_standard_webhooks_shape() -> None:
    secret = domain.new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    assert domain.new_webhook_id().startswith("msg_")
    assert domain.new_webhook_id() != domain.new_webhook_id()


def test_signed_headers_verify_with_the_standard_library() -> None:
    secret = domain.new_secret()
    payload = '{"type":"node.output","data":{"value":"é"}}'
    headers = signed_headers(secret, "msg_1", payload, datetime.now(UTC))
    assert Webhook(secret).verify(payload, headers)["type"] == "node.output"
    with pytest.raises(Exception, match="signature"):
        Webhook(domain.new_secret()).verify(payload, headers)


def test_sealed_secrets_open_only_for_their_row_and_survive_key_rotation() -> None:
    endpoint_id = uuid.uuid4()
    old = SecretBox.from_base64({"a": KEY_A}, "a")
    sealed = old.seal("user-1", endpoint_id, "whsec_abc")
    assert b"whsec_abc" not in sealed.data
    assert old.open("user-1", endpoint_id, sealed) == "whsec_abc"
    with pytest.raises(SealingError):
        old.open("user-2", endpoint_id, sealed)
    with pytest.raises(SealingError):
        old.open("user-1", uuid.uuid4(), sealed)
    rotated = SecretBox.from_base64({"a": KEY_A, "b": KEY_B}, "b")
    assert rotated.open("user-1", endpoint_id, sealed) == "whsec_abc"
    resealed = rotated.reseal("user-1", endpoint_id, sealed)
    assert resealed.key_id == "b"
    with pytest.raises(SealingError):
        old.open("user-1", endpoint_id, resealed)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.0.0.7/hook",
        "http://192.168.1.20/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fd00::1]/hook",
        "http://0.0.0.0/hook",
    ],
)
async def test_private_and_metadata_targets_are_refused_without_the_allowance(url: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        await check_target(url, AddressPolicy())
    assert error.value.reason == REFUSED_REASON
    assert error.value.metadata == {"field": "url"}


async def test_the_allowance_opens_loopback_but_never_metadata() -> None:
    allowed = AddressPolicy(allow_private=True)
    await check_target("http://127.0.0.1:9/hook", allowed)
    await check_target("http://localhost:9/hook", allowed)
    for url in ("http://169.254.169.254/", "http://[::ffff:10.0.0.1]/", "http://224.0.0.1/"):
        with pytest.raises(InvalidArgument):
            await check_target(url, allowed)


async def test_a_public_address_passes_the_guard() -> None:
    await check_target("https://93.184.215.14/hook", AddressPolicy())


async def test_a_host_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(InvalidArgument) as error:
        await check_target("https://no-such-host.invalid/hook", AddressPolicy())
    assert error.value.metadata == {"field": "url"}
