"""The LLM call block against a real OpenAI-compatible server (the devkit's fake)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from typing import Any

import pytest

from agentloom_blocks.library.llm_call import LlmCallBlock, format_prompt
from agentloom_blocks.library.text_input import TextInputBlock
from agentloom_blocks.sdk import BlockContext, BlockError, RetryableBlockError
from agentloom_devkit.fake_openai import FakeOpenAI


@pytest.fixture(autouse=True)
def fresh_requests(fake_openai: FakeOpenAI) -> None:
    fake_openai.clear_requests()


async def run_llm(context: BlockContext, **input_data: Any) -> dict[str, Any]:
    outputs = LlmCallBlock().run(LlmCallBlock.Input(**input_data), context)
    return {pin: value async for pin, value in outputs}


def with_config(context: BlockContext, **changes: Any) -> BlockContext:
    return dataclasses.replace(context, config=dataclasses.replace(context.config, **changes))


# Formatting ------------------------------------------------------------------------------


def test_format_prompt_fills_known_names_and_leaves_every_other_brace() -> None:
    text = 'Say {greeting} to {name}, as JSON {"a": {b}} or {{ name }}; {0} {} {{x}}'
    formatted = format_prompt(text, {"greeting": "hi", "name": "Ada"})
    assert formatted == 'Say hi to Ada, as JSON {"a": {b}} or Ada; {0} {} {{x}}'


def test_format_prompt_does_not_fill_placeholders_inside_inserted_values() -> None:
    assert format_prompt("{a} {b}", {"a": "{b}", "b": "B"}) == "{b} B"


def test_format_prompt_writes_structured_values_as_json() -> None:
    values = {"items": ["x", 1], "meta": {"k": "ü"}, "none": None, "n": 2.5}
    assert format_prompt("{items} {meta} [{none}] {n}", values) == '["x", 1] {"k": "ü"} [] 2.5'


def test_format_prompt_accepts_non_ascii_names() -> None:
    assert format_prompt("摘要:{文本}", {"文本": "内容"}) == "摘要:内容"


# Requests --------------------------------------------------------------------------------


async def test_an_extra_pin_fills_the_prompt_as_in_the_reference_example(
    context: BlockContext, fake_openai: FakeOpenAI
) -> None:
    """The manual's API example: `{input_text}` comes from a pin linked from a text input."""
    input_default = {
        "model": "gpt-4",
        "prompt": "请简洁地总结以下内容:\n\n{input_text}",
        "max_tokens": 150,
    }
    text = "这是一段需要摘要的长文本..."
    linked = {"input_text": text}

    outputs = await run_llm(context, **input_default, **linked)

    assert outputs["response"] == f"summary: 请简洁地总结以下内容: {text}"
    (request,) = fake_openai.requests()
    assert request["body"]["model"] == "gpt-4"
    assert request["body"]["max_tokens"] == 150
    assert request["body"]["messages"] == [
        {"role": "user", "content": f"请简洁地总结以下内容:\n\n{text}"}
    ]


async def test_the_reference_web_example_graph_runs_node_by_node(
    context: BlockContext, fake_openai: FakeOpenAI
) -> None:
    """The manual's web example: text_input_block's `text` pin linked to the LLM's `text`."""
    assert TextInputBlock.graph_io_name({}) == "text"  # so inputs={"text": ...} reaches it
    text_node = TextInputBlock().run(TextInputBlock.Input(value="Long text to sum up."), context)
    text_outputs = [output async for output in text_node]
    assert text_outputs == [("text", "Long text to sum up.")]

    input_default = {"model": "gpt-4", "prompt": "请对以下文本进行摘要:{text}"}
    outputs = await run_llm(context, **input_default, text=text_outputs[0][1])

    assert outputs["response"] == "summary: 请对以下文本进行摘要:Long text to sum up."
    assert fake_openai.requests()[0]["body"]["messages"][0]["content"].endswith("sum up.")


async def test_settings_reach_the_provider_and_unset_ones_are_not_sent(
    context: BlockContext, fake_openai: FakeOpenAI
) -> None:
    await run_llm(
        context,
        prompt="Hello {who}",
        model="gpt-4o",
        sys_prompt="You speak to {who}.",
        max_tokens=7,
        temperature=0.2,
        prompt_values={"who": "values"},
        who="an extra pin",
    )
    await run_llm(context, prompt="Plain")

    full, minimal = (request["body"] for request in fake_openai.requests())
    assert full == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You speak to an extra pin."},
            {"role": "user", "content": "Hello an extra pin"},
        ],
        "max_tokens": 7,
        "temperature": 0.2,
    }
    assert minimal == {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Plain"}]}


async def test_yields_the_response_then_the_usage(context: BlockContext) -> None:
    outputs = LlmCallBlock().run(LlmCallBlock.Input(prompt="one two three"), context)
    assert [output async for output in outputs] == [
        ("response", "summary: one two three"),
        ("usage", {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}),
    ]


# Failures --------------------------------------------------------------------------------


def assert_no_secret(error: BaseException, context: BlockContext) -> None:
    api_key = context.config.openai_api_key
    assert api_key
    assert api_key not in str(error)
    assert api_key not in repr(error)
    # No chained httpx exception either: it would carry the request and its headers.
    assert error.__cause__ is None
    assert error.__suppress_context__


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_a_transient_provider_failure_is_retryable(
    context: BlockContext, status: int
) -> None:
    with pytest.raises(RetryableBlockError, match=f"answered {status}") as caught:
        await run_llm(context, prompt=f"[[fail-{status}]]")
    assert_no_secret(caught.value, context)


async def test_a_rejected_request_is_not_retryable_and_says_why(context: BlockContext) -> None:
    with pytest.raises(BlockError, match="Simulated failure 400") as caught:
        await run_llm(context, prompt="[[fail-400]]")
    assert not caught.value.retryable
    assert_no_secret(caught.value, context)


async def test_a_provider_quoting_the_key_back_does_not_leak_it(context: BlockContext) -> None:
    with pytest.raises(BlockError, match=r"Incorrect API key provided: \*\*\*") as caught:
        await run_llm(context, prompt="[[fail-401]]")
    assert not caught.value.retryable
    assert_no_secret(caught.value, context)


async def test_a_missing_api_key_fails_before_any_request(
    context: BlockContext, fake_openai: FakeOpenAI
) -> None:
    for key in (None, ""):
        with pytest.raises(BlockError, match="no OpenAI API key") as caught:
            await run_llm(with_config(context, openai_api_key=key), prompt="hi")
        assert not caught.value.retryable
    assert fake_openai.requests() == []


async def test_a_slow_provider_times_out_as_retryable(context: BlockContext) -> None:
    slow_context = with_config(context, http_timeout_s=0.2)
    with pytest.raises(RetryableBlockError, match=r"did not answer within 0\.2s") as caught:
        await run_llm(slow_context, prompt="[[slow:1]]")
    assert_no_secret(caught.value, context)


async def test_a_cancelled_call_stops_at_once(context: BlockContext) -> None:
    call = asyncio.create_task(run_llm(context, prompt="[[slow:2]]"))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert time.monotonic() - started < 0.5


async def test_an_unreachable_provider_is_retryable(context: BlockContext) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    unreachable = with_config(context, openai_base_url=f"http://127.0.0.1:{port}/v1")
    with pytest.raises(RetryableBlockError, match="could not reach") as caught:
        await run_llm(unreachable, prompt="hi")
    assert_no_secret(caught.value, context)


async def test_a_url_without_a_scheme_is_not_retryable(context: BlockContext) -> None:
    with pytest.raises(BlockError, match="bad LLM provider URL") as caught:
        await run_llm(with_config(context, openai_base_url="localhost/v1"), prompt="hi")
    assert not caught.value.retryable
