"""The user's memory: values kept by key across executions (and, if asked, across graphs)."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockError, BlockExample, KeyValueStore


class Scope(enum.StrEnum):
    GRAPH = "graph"
    USER = "user"


def _store(context: BlockContext) -> KeyValueStore:
    if context.store is None:
        raise BlockError("no memory store is available to this block")
    return context.store


def scoped_key(context: BlockContext, scope: Scope, key: str) -> str:
    """Keys of one graph do not collide with another's unless shared on purpose."""
    return f"graph:{context.graph_id}:{key}" if scope is Scope.GRAPH else f"user:{key}"


def _key_field() -> Any:
    return Field(min_length=1, max_length=256, title="Key", description="The name of the value.")


def _scope_field() -> Any:
    return Field(
        default=Scope.GRAPH,
        title="Scope",
        description="'graph': only this graph sees it; 'user': all your graphs do.",
    )


class PersistValueBlock(Block):
    id = "persist_value_block"
    name = "Remember value"
    description = (
        "Saves a value under a key in your memory, for later executions to read with "
        "'Recall value'. Saving again under the same key replaces it."
    )
    categories = ("memory",)
    cost_per_run = 1

    class Input(BaseModel):
        key: str = _key_field()
        value: Any = Field(title="Value", description="The value to keep (JSON).")
        scope: Scope = _scope_field()

    class Output(BaseModel):
        value: Any = Field(title="Value", description="The value saved.")

    examples = (
        BlockExample(input={"key": "last_topic", "value": "bees"}, outputs=[("value", "bees")]),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        await _store(context).set(scoped_key(context, input.scope, input.key), input.value)
        yield "value", input.value


class RetrieveValueBlock(Block):
    id = "retrieve_value_block"
    name = "Recall value"
    description = (
        "Reads a value saved under a key by 'Remember value'; yields `default` when nothing "
        "is saved (or fails when no default is given)."
    )
    categories = ("memory",)
    cost_per_run = 1

    class Input(BaseModel):
        key: str = _key_field()
        scope: Scope = _scope_field()
        default: Any = Field(
            default=None, title="Default", description="What to yield when nothing is saved."
        )

    class Output(BaseModel):
        value: Any = Field(title="Value", description="The value saved, or the default.")

    examples = (
        BlockExample(input={"key": "never_saved", "default": 0}, outputs=[("value", 0)]),
        BlockExample(
            input={"key": "never_saved"},
            outputs=[("error", "nothing is saved under 'never_saved'")],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        value = await _store(context).get(scoped_key(context, input.scope, input.key))
        if value is None:
            if input.default is None:
                raise BlockError(f"nothing is saved under {input.key!r}")
            value = input.default
        yield "value", value


class ForgetValueBlock(Block):
    id = "forget_value_block"
    name = "Forget value"
    description = "Deletes the value saved under a key (nothing happens if there is none)."
    categories = ("memory",)
    cost_per_run = 0

    class Input(BaseModel):
        key: str = _key_field()
        scope: Scope = _scope_field()

    class Output(BaseModel):
        key: str = Field(title="Key", description="The key forgotten.")

    examples = (BlockExample(input={"key": "last_topic"}, outputs=[("key", "last_topic")]),)

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        await _store(context).delete(scoped_key(context, input.scope, input.key))
        yield "key", input.key
