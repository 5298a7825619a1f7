"""Continues a conversation with a model."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.providers import LLM_CREDENTIALS, ChatRequest, chat
from agentloom_blocks.sdk import Block, BlockContext, BlockCosts, BlockError, BlockExample


class Role(enum.StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class Message(BaseModel):
    role: Role = Field(title="Role", description="Who speaks: system, user or assistant.")
    content: str = Field(title="Content", description="What they say.")


class AiConversationBlock(Block):
    id = "ai_conversation_block"
    name = "AI conversation"
    description = (
        "Sends a conversation (a list of {role, content} messages, plus an optional new "
        "`prompt` from the user) to a model and yields its reply on `response`, the "
        "conversation with the reply on `messages`, and the tokens used on `usage`."
    )
    categories = ("ai",)
    cost_per_run = 1
    costs = BlockCosts(per_1k_tokens=1)
    credentials = LLM_CREDENTIALS

    class Input(BaseModel):
        messages: list[Message] = Field(
            default_factory=list, title="Messages", description="The conversation so far."
        )
        prompt: str = Field(
            default="", title="Prompt", description="A new user message to add (optional)."
        )
        model: str = Field(default="gpt-4o-mini", title="Model", description="The model to call.")
        max_tokens: int | None = Field(
            default=None, ge=1, title="Max tokens", description="The longest reply, in tokens."
        )

    class Output(BaseModel):
        response: str = Field(title="Response", description="The model's reply.")
        messages: list[dict[str, str]] = Field(
            title="Messages", description="The conversation, the reply included."
        )
        usage: dict[str, int] = Field(title="Usage", description="Tokens used.")

    examples = (
        BlockExample(
            input={
                "messages": [
                    {"role": "system", "content": "You are brief."},
                    {"role": "user", "content": "Hi, I am Ada."},
                    {"role": "assistant", "content": "Hello Ada."},
                ],
                "prompt": "What is my name?",
            },
            outputs=[
                ("response", "summary: What is my name?"),
                (
                    "messages",
                    [
                        {"role": "system", "content": "You are brief."},
                        {"role": "user", "content": "Hi, I am Ada."},
                        {"role": "assistant", "content": "Hello Ada."},
                        {"role": "user", "content": "What is my name?"},
                        {"role": "assistant", "content": "summary: What is my name?"},
                    ],
                ),
                ("usage", {"prompt_tokens": 13, "completion_tokens": 5, "total_tokens": 18}),
            ],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        history = [{"role": m.role.value, "content": m.content} for m in input.messages]
        if input.prompt:
            history.append({"role": "user", "content": input.prompt})
        system = "\n\n".join(m["content"] for m in history if m["role"] == "system")
        turns = [m for m in history if m["role"] != "system"]
        if not turns or turns[-1]["role"] != "user":
            raise BlockError("the conversation must end with a user message (give a prompt)")
        request = ChatRequest(input.model, turns, system, max_tokens=input.max_tokens)
        result = await chat(context, request)
        yield "response", result.text
        yield "messages", [*history, {"role": "assistant", "content": result.text}]
        yield "usage", result.usage
