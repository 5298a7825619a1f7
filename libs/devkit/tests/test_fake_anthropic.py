"""The fake Anthropic server over real HTTP: Messages API shape, headers, errors, triggers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from agentloom_devkit.fake_anthropic import FakeAnthropic

HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
async def client(fake: FakeAnthropic) -> AsyncIterator[httpx.AsyncClient]:
    fake.clear_requests()
    async with httpx.AsyncClient(base_url=fake.base_url, headers=HEADERS, timeout=10) as c:
        yield c


def message(content: Any, **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-x",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": content}],
        **extra,
    }


async def test_answers_a_message_like_the_messages_api(
    client: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    response = await client.post("/v1/messages", json=message("one two three", system="Be brief"))

    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "message" and body["role"] == "assistant"
    assert body["content"] == [{"type": "text", "text": "summary: one two three"}]
    assert body["usage"] == {"input_tokens": 5, "output_tokens": 4}
    assert fake.requests()[0]["body"]["system"] == "Be brief"


@pytest.mark.parametrize(
    ("headers", "status"),
    [({"anthropic-version": "2023-06-01"}, 401), ({"x-api-key": "k"}, 400)],
)
async def test_requires_the_key_and_version_headers(
    fake: FakeAnthropic, headers: dict[str, str], status: int
) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url, headers=headers) as client:
        response = await client.post("/v1/messages", json=message("hi"))
    assert response.status_code == status
    assert response.json()["type"] == "error"


@pytest.mark.parametrize(
    "body",
    [
        {"model": "claude-x", "messages": [{"role": "user", "content": "x"}]},
        message("x") | {"messages": [{"role": "system", "content": "x"}]},
        message("x") | {"messages": [{"role": "assistant", "content": "x"}]},
    ],
)
async def test_rejects_what_the_real_api_rejects(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await client.post("/v1/messages", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_a_rate_limit_says_when_to_retry(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/messages", json=message("[[fail-429]]"))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["type"] == "rate_limit_error"


async def test_a_scripted_reply_follows_the_turns(client: httpx.AsyncClient) -> None:
    script = "[[reply]]first[[or]]second[[/reply]]"
    first = await client.post("/v1/messages", json=message(script))
    turns = [
        {"role": "user", "content": script},
        {"role": "assistant", "content": "first"},
        {"role": "user", "content": "again"},
    ]
    second = await client.post("/v1/messages", json=message("x") | {"messages": turns})
    assert first.json()["content"][0]["text"] == "first"
    assert second.json()["content"][0]["text"] == "second"
