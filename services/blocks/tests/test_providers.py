"""LLM providers chosen by model name, against local servers speaking OpenAI's and
Anthropic's protocols: answers, usage, credentials, and failures mapped to retryability."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from agentloom_blocks.library.ai_conversation import AiConversationBlock
from agentloom_blocks.library.ai_list_generator import AiListGeneratorBlock
from agentloom_blocks.library.ai_structured_response import AiStructuredResponseBlock
from agentloom_blocks.library.llm_call import LlmCallBlock
from agentloom_blocks.providers import provider_for
from agentloom_blocks.sdk import Block, BlockContext, BlockError, RetryableBlockError
from agentloom_devkit.fake_anthropic import FakeAnthropic
from agentloom_devkit.fake_openai import FakeOpenAI


@pytest.fixture(autouse=True)
def fresh_requests(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_openai.clear_requests()
    fake_anthropic.clear_requests()


async def run(block: type[Block], context: BlockContext, **input_data: Any) -> list[Any]:
    return [output async for output in block().run(block.Input(**input_data), context)]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o-mini", ("openai", "gpt-4o-mini")),
        ("openai/gpt-4.1", ("openai", "gpt-4.1")),
        ("claude-sonnet-4-5", ("anthropic", "claude-sonnet-4-5")),
        ("anthropic/claude-opus-4", ("anthropic", "claude-opus-4")),
        ("ollama/llama3.2", ("ollama", "llama3.2")),
        ("meta-llama/Llama-3-8b", ("openai", "meta-llama/Llama-3-8b")),
        ("mistral-large", ("openai", "mistral-large")),
    ],
)
def test_the_model_name_picks_the_provider(model: str, expected: tuple[str, str]) -> None:
    assert provider_for(model) == expected


async def test_claude_models_speak_the_messages_api(
    context: BlockContext, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    outputs = await run(
        LlmCallBlock,
        context,
        model="claude-haiku-4-5",
        prompt="Tell me about {topic}",
        sys_prompt="Be brief.",
        topic="bees",
        temperature=1.5,
    )

    assert outputs == [
        ("response", "summary: Tell me about bees"),
        ("usage", {"prompt_tokens": 6, "completion_tokens": 5, "total_tokens": 11}),
    ]
    (request,) = fake_anthropic.requests()
    assert request["headers"]["x-api-key"] == context.config.anthropic_api_key
    assert request["headers"]["anthropic-version"] == "2023-06-01"
    assert request["body"] == {
        "model": "claude-haiku-4-5",
        "messages": [{"role": "user", "content": "Tell me about bees"}],
        "max_tokens": 4096,
        "system": "Be brief.",
        "temperature": 1.0,
    }
    assert fake_openai.requests() == []


async def test_ollama_models_go_to_the_ollama_endpoint_without_their_prefix(
    context: BlockContext, fake_openai: FakeOpenAI
) -> None:
    config = dataclasses.replace(
        context.config, ollama_base_url=fake_openai.base_url, openai_base_url="http://unused/v1"
    )
    outputs = await run(
        LlmCallBlock,
        dataclasses.replace(context, config=config),
        model="ollama/llama3",
        prompt="hi",
    )
    assert outputs[0] == ("response", "summary: hi")
    assert fake_openai.requests()[0]["body"]["model"] == "llama3"


async def test_the_users_own_key_wins_over_the_platforms(
    context: BlockContext, fake_anthropic: FakeAnthropic
) -> None:
    own = dataclasses.replace(context, credentials={"anthropic": {"api_key": "sk-ant-users"}})
    await run(LlmCallBlock, own, model="anthropic/claude-x", prompt="hi")
    assert fake_anthropic.requests()[0]["headers"]["x-api-key"] == "sk-ant-users"


async def test_a_missing_anthropic_key_fails_before_any_request(
    context: BlockContext, fake_anthropic: FakeAnthropic
) -> None:
    config = dataclasses.replace(context.config, anthropic_api_key=None)
    with pytest.raises(BlockError, match="no Anthropic API key") as caught:
        await run(
            LlmCallBlock, dataclasses.replace(context, config=config), model="claude-x", prompt="hi"
        )
    assert not caught.value.retryable
    assert fake_anthropic.requests() == []


@pytest.mark.parametrize("status", [429, 500, 529, 408])
async def test_anthropic_transient_failures_are_retryable(
    context: BlockContext, status: int
) -> None:
    with pytest.raises(RetryableBlockError, match=f"answered {status}: Simulated failure"):
        await run(LlmCallBlock, context, model="claude-x", prompt=f"[[fail-{status}]]")


async def test_an_anthropic_rejection_is_permanent_and_hides_the_key(context: BlockContext) -> None:
    key = context.config.anthropic_api_key
    assert key
    with pytest.raises(BlockError, match=r"answered 401: invalid x-api-key: \*\*\*") as caught:
        await run(LlmCallBlock, context, model="claude-x", prompt="[[fail-401]]")
    assert not caught.value.retryable
    assert key not in str(caught.value)
    assert caught.value.__cause__ is None


async def test_a_slow_anthropic_times_out_as_retryable(context: BlockContext) -> None:
    config = dataclasses.replace(context.config, http_timeout_s=0.2)
    with pytest.raises(RetryableBlockError, match="did not answer within"):
        await run(
            LlmCallBlock,
            dataclasses.replace(context, config=config),
            model="claude-x",
            prompt="[[slow:1]]",
        )


# Structured output ------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city"],
}


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-x"])
async def test_structured_output_is_asked_again_with_the_reason(
    context: BlockContext, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, model: str
) -> None:
    prompt = (
        'City? [[reply]]no JSON here[[or]]{"city": 5}[[or]]```json\n{"city": "Oslo"}\n```[[/reply]]'
    )
    outputs = await run(
        AiStructuredResponseBlock, context, model=model, prompt=prompt, expected_format=SCHEMA
    )

    assert outputs[0] == ("response", {"city": "Oslo"})
    pin, usage = outputs[1]
    assert (
        pin == "usage"
        and usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    )
    fake = fake_anthropic if model.startswith("claude") else fake_openai
    requests = fake.requests()
    assert len(requests) == 3
    last_messages = requests[-1]["body"]["messages"]
    corrections = [m["content"] for m in last_messages if "does not match" in str(m["content"])]
    assert "the answer contains no JSON" in corrections[0]
    assert "at city: 5 is not of type 'string'" in corrections[1]


async def test_structured_output_gives_up_after_the_retries(
    context: BlockContext, fake_openai: FakeOpenAI
) -> None:
    with pytest.raises(
        BlockError, match="in 2 attempts; last problem: at \\(root\\): 'city' is a required"
    ):
        await run(
            AiStructuredResponseBlock,
            context,
            prompt="[[reply]]{}[[/reply]]",
            expected_format=SCHEMA,
            retry=1,
        )
    assert len(fake_openai.requests()) == 2


async def test_an_invalid_schema_fails_before_any_call(
    context: BlockContext, fake_openai: FakeOpenAI
) -> None:
    with pytest.raises(BlockError, match="not a valid JSON Schema"):
        await run(AiStructuredResponseBlock, context, prompt="x", expected_format={"type": 12})
    assert fake_openai.requests() == []


async def test_the_list_generator_retries_a_non_list(context: BlockContext) -> None:
    outputs = await run(
        AiListGeneratorBlock,
        context,
        focus='[[reply]]{"a": 1}[[or]]["x", 2][[/reply]]',
        max_items=5,
    )
    assert outputs[:3] == [("generated_list", ["x", "2"]), ("list_item", "x"), ("list_item", "2")]


async def test_a_conversation_to_claude_sends_system_apart(
    context: BlockContext, fake_anthropic: FakeAnthropic
) -> None:
    messages = [{"role": "system", "content": "Terse."}, {"role": "user", "content": "Hi"}]
    outputs = await run(AiConversationBlock, context, model="claude-x", messages=messages)
    assert outputs[0] == ("response", "summary: Hi")
    body = fake_anthropic.requests()[0]["body"]
    assert body["system"] == "Terse."
    assert body["messages"] == [{"role": "user", "content": "Hi"}]


async def test_a_conversation_must_end_with_the_user(context: BlockContext) -> None:
    with pytest.raises(BlockError, match="must end with a user message"):
        await run(AiConversationBlock, context, messages=[{"role": "assistant", "content": "Hi"}])
