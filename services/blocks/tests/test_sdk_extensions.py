"""The SDK's declarations (credentials, costs, static output, memory) and form-ready schemas."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest

from agentloom_blocks.library.condition import ConditionBlock
from agentloom_blocks.library.llm_call import LlmCallBlock
from agentloom_blocks.library.memory import PersistValueBlock, RetrieveValueBlock
from agentloom_blocks.library.send_email import SendEmailBlock
from agentloom_blocks.library.store_value import StoreValueBlock
from agentloom_blocks.library.time_blocks import CurrentTimeBlock
from agentloom_blocks.library.typed_inputs import SecretInputBlock
from agentloom_blocks.library.wait import WaitBlock
from agentloom_blocks.registry import load_blocks
from agentloom_blocks.sdk import Block, BlockContext, BlockCosts, BlockError, PlatformConfig

BLOCKS = [pytest.param(block, id=block_id) for block_id, block in load_blocks().items()]


async def run(block: type[Block], context: BlockContext, **input_data: Any) -> list[Any]:
    return [output async for output in block().run(block.Input(**input_data), context)]


def test_the_library_has_every_family() -> None:
    ids = set(load_blocks())
    assert len(ids) >= 40
    for expected in (
        "boolean_input_block", "choice_input_block", "secret_input_block", "note_block",
        "condition_block", "if_input_matches_block", "store_value_block", "wait_block",
        "jmespath_query_block", "calculator_block", "regex_match_block", "html_to_text_block",
        "http_request_block", "rss_feed_block", "ai_structured_response_block",
        "ai_text_summarizer_block", "send_email_block", "send_webhook_block",
        "current_time_block", "persist_value_block", "retrieve_value_block",
    ):  # fmt: skip
        assert expected in ids


@pytest.mark.parametrize("block", BLOCKS)
def test_every_input_can_be_rendered_as_a_form_field(block: type[Block]) -> None:
    schema = block.input_schema()
    definitions = schema.get("$defs", {})
    for name, prop in schema["properties"].items():
        assert prop.get("title") and prop.get("description"), name
        if "$ref" in prop or any("$ref" in option for option in prop.get("anyOf", [])):
            refs = [prop.get("$ref")] + [o.get("$ref") for o in prop.get("anyOf", [])]
            for ref in filter(None, refs):
                target = definitions[ref.rsplit("/", 1)[1]]
                assert "enum" in target or "properties" in target, (name, target)
        if name not in schema.get("required", []):
            assert "default" in prop, f"{name} is optional but has no default"


def test_choices_are_enums_in_the_schema() -> None:
    schema = ConditionBlock.input_schema()
    operator = schema["$defs"][schema["properties"]["operator"]["$ref"].rsplit("/", 1)[1]]
    assert {"==", "!=", ">", "<", ">=", "<=", "contains"} <= set(operator["enum"])
    assert schema["properties"]["operator"]["default"] == "=="


def test_secret_and_advanced_fields_are_marked() -> None:
    assert SecretInputBlock.input_schema()["properties"]["value"]["secret"] is True
    email = SendEmailBlock.input_schema()
    assert email["properties"]["smtp_host"]["advanced"] is True
    assert email["x-credentials"] == [
        {
            "provider": "smtp",
            "kind": "user_password",
            "description": "The SMTP server's username and password.",
            "required": False,
        }
    ]


def test_costs_default_per_run_to_cost_per_run() -> None:
    assert ConditionBlock.cost_declaration() == BlockCosts(per_run=0)
    assert LlmCallBlock.cost_declaration() == BlockCosts(per_run=1, per_1k_tokens=1)


def test_only_store_value_has_static_output() -> None:
    assert StoreValueBlock.static_output
    assert [b.id for b in load_blocks().values() if b.static_output] == ["store_value_block"]


def test_credentials_fall_back_to_the_platforms() -> None:
    config = PlatformConfig(openai_api_key="platform-key", smtp_username="relay")
    context = BlockContext("u", "g", "e", "n", "ne", config=config)
    assert context.credential("openai") == "platform-key"
    assert context.credential("smtp", "username") == "relay"
    assert context.credential("anthropic") is None
    own = dataclasses.replace(context, credentials={"openai": {"api_key": "users-key"}})
    assert own.credential("openai") == "users-key"


async def test_memory_is_kept_per_graph_unless_shared(context: BlockContext) -> None:
    await run(PersistValueBlock, context, key="k", value={"n": 1})
    await run(PersistValueBlock, context, key="k", value="shared", scope="user")
    other_graph = dataclasses.replace(context, graph_id="graph-2")

    assert await run(RetrieveValueBlock, context, key="k") == [("value", {"n": 1})]
    assert await run(RetrieveValueBlock, other_graph, key="k", scope="user") == [
        ("value", "shared")
    ]
    with pytest.raises(BlockError, match="nothing is saved under 'k'"):
        await run(RetrieveValueBlock, other_graph, key="k")


async def test_memory_without_a_store_fails_clearly(context: BlockContext) -> None:
    with pytest.raises(BlockError, match="no memory store"):
        await run(PersistValueBlock, dataclasses.replace(context, store=None), key="k", value=1)


async def test_the_current_time_is_now_in_the_zone(context: BlockContext) -> None:
    before = time.time()
    (pin, text), (_, stamp) = await run(CurrentTimeBlock, context, timezone="Asia/Tokyo")
    assert pin == "time" and text.endswith("+09:00")
    assert before - 1 <= stamp <= time.time() + 1


async def test_a_wait_ends_at_once_when_the_execution_is_stopped(context: BlockContext) -> None:
    waiting = asyncio.create_task(run(WaitBlock, context, seconds=30, value=1))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    context.cancelled.set()
    with pytest.raises(BlockError, match="cancelled"):
        await waiting
    assert time.monotonic() - started < 0.5


async def test_a_wait_past_the_platform_limit_is_refused(context: BlockContext) -> None:
    config = dataclasses.replace(context.config, max_wait_s=1)
    with pytest.raises(BlockError, match="at most 1 seconds"):
        await run(WaitBlock, dataclasses.replace(context, config=config), seconds=5)
