"""The fake OpenAI server over real HTTP: protocol shape, auth, recording, triggers."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from agentloom_devkit.fake_openai import FakeOpenAI, run_in_thread

AUTH = {"Authorization": "Bearer test-key"}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[httpx.AsyncClient]:
    fake.clear_requests()
    async with httpx.AsyncClient(base_url=fake.base_url, headers=AUTH, timeout=10) as c:
        yield c


def chat(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], **extra}


async def test_answers_a_chat_completion_with_the_first_words_of_the_prompt(
    client: httpx.AsyncClient,
) -> None:
    prompt = "one two three four five six seven eight nine ten eleven twelve thirteen"
    body = {
        "model": "gpt-4",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": prompt},
        ],
    }

    response = await client.post("/chat/completions", json=body)

    assert response.status_code == 200
    completion = response.json()
    assert completion["object"] == "chat.completion"
    assert completion["id"].startswith("chatcmpl-")
    assert completion["model"] == "gpt-4"
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == "summary: " + " ".join(prompt.split()[:12])
    assert completion["usage"] == {"prompt_tokens": 15, "completion_tokens": 13, "total_tokens": 28}


async def test_serves_the_path_without_v1_too(fake: FakeOpenAI) -> None:
    root = fake.base_url.removesuffix("/v1")
    async with httpx.AsyncClient(base_url=root, headers=AUTH) as client:
        response = await client.post("/chat/completions", json=chat("hi there"))
    assert response.json()["choices"][0]["message"]["content"] == "summary: hi there"


async def test_answers_content_given_as_parts(client: httpx.AsyncClient) -> None:
    parts = [{"type": "text", "text": "look"}, {"type": "text", "text": "here"}]
    response = await client.post("/chat/completions", json=chat(parts))  # type: ignore[arg-type]
    assert response.json()["choices"][0]["message"]["content"] == "summary: look here"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}]
)
async def test_requires_a_bearer_token(fake: FakeOpenAI, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url, headers=headers) as client:
        response = await client.post("/chat/completions", json=chat("hello"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


async def test_rejects_a_request_without_messages(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat/completions", json={"model": "gpt-4o-mini"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_records_the_requests_it_answered(
    fake: FakeOpenAI, client: httpx.AsyncClient
) -> None:
    await client.post("/chat/completions", json=chat("first", max_tokens=5))
    await client.post("/chat/completions", json=chat("second"))

    recorded = (await client.get("/_requests")).json()

    assert [r["body"]["messages"][0]["content"] for r in recorded] == ["first", "second"]
    assert recorded[0]["body"]["max_tokens"] == 5
    assert recorded[0]["path"] == "/v1/chat/completions"
    assert fake.requests() == recorded
    root = fake.base_url.removesuffix("/v1")
    assert (await client.get(f"{root}/_requests")).json() == recorded
    assert (await client.delete("/_requests")).status_code == 204
    assert fake.requests() == []


@pytest.mark.parametrize("status", [500, 503, 429, 400, 401])
async def test_fails_when_the_prompt_asks(client: httpx.AsyncClient, status: int) -> None:
    response = await client.post("/chat/completions", json=chat(f"please [[fail-{status}]]"))
    assert response.status_code == status
    assert "Simulated failure" in response.json()["error"]["message"]


async def test_a_simulated_401_quotes_the_key_back(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat/completions", json=chat("[[fail-401]]"))
    assert "test-key" in response.json()["error"]["message"]


async def test_answers_slowly_when_the_prompt_asks(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    response = await client.post("/chat/completions", json=chat("wait [[slow:0.3]] please"))
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


async def test_lists_models(client: httpx.AsyncClient) -> None:
    response = await client.get("/models")
    assert "gpt-4o-mini" in [m["id"] for m in response.json()["data"]]


async def test_run_in_thread_serves_until_stopped() -> None:
    base_url, stop = run_in_thread()
    async with httpx.AsyncClient(base_url=base_url, headers=AUTH) as client:
        assert (await client.post("/chat/completions", json=chat("x"))).status_code == 200
        stop()
        with pytest.raises(httpx.ConnectError):
            await client.post("/chat/completions", json=chat("x"))
    stop()  # a second stop is harmless


def test_runs_from_the_command_line() -> None:
    """`python -m agentloom_devkit.fake_openai` serves on the port it is given."""
    import socket
    import subprocess

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "agentloom_devkit.fake_openai", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/v1/chat/completions", json=chat("cli"), headers=AUTH
                )
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        assert response.json()["choices"][0]["message"]["content"] == "summary: cli"
    finally:
        process.terminate()
        process.wait(10)


async def test_a_scripted_reply_follows_the_turns(client: httpx.AsyncClient) -> None:
    script = 'JSON please [[reply]]not json[[or]]{"ok": true}[[/reply]]'
    first = await client.post("/chat/completions", json=chat(script))
    body = chat(script)
    body["messages"] += [
        {"role": "assistant", "content": "not json"},
        {"role": "user", "content": "That was not JSON."},
    ]
    second = await client.post("/chat/completions", json=body)
    assert first.json()["choices"][0]["message"]["content"] == "not json"
    assert second.json()["choices"][0]["message"]["content"] == '{"ok": true}'
