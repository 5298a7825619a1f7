"""Dictionaries: create, add to, look up, remove from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockError, BlockExample


class CreateDictionaryBlock(Block):
    id = "create_dictionary_block"
    inline = True
    name = "Create dictionary"
    description = "Yields a dictionary made of the given key/value pairs."
    categories = ("data",)
    cost_per_run = 0

    class Input(BaseModel):
        values: dict[str, Any] = Field(
            default_factory=dict, title="Values", description="The keys and their values."
        )

    class Output(BaseModel):
        dictionary: dict[str, Any] = Field(title="Dictionary", description="The dictionary.")

    examples = (
        BlockExample(
            input={"values": {"a": 1, "b": "x"}}, outputs=[("dictionary", {"a": 1, "b": "x"})]
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        yield "dictionary", dict(input.values)


class AddToDictionaryBlock(Block):
    id = "add_to_dictionary_block"
    inline = True
    name = "Add to dictionary"
    description = (
        "Adds `key`: `value` (when a key is given) and every pair of `entries` to a copy of "
        "the dictionary, replacing existing keys, and yields it."
    )
    categories = ("data",)
    cost_per_run = 0

    class Input(BaseModel):
        dictionary: dict[str, Any] = Field(
            default_factory=dict, title="Dictionary", description="The dictionary to add to."
        )
        key: str | None = Field(default=None, title="Key", description="One key to set.")
        value: Any = Field(default=None, title="Value", description="The value for `key`.")
        entries: dict[str, Any] = Field(
            default_factory=dict, title="Entries", description="More pairs to set."
        )

    class Output(BaseModel):
        updated_dictionary: dict[str, Any] = Field(
            title="Updated dictionary", description="The dictionary with the additions."
        )

    examples = (
        BlockExample(
            input={"dictionary": {"a": 1}, "key": "b", "value": 2, "entries": {"c": 3}},
            outputs=[("updated_dictionary", {"a": 1, "b": 2, "c": 3})],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        updated = dict(input.dictionary)
        if input.key is not None:
            updated[input.key] = input.value
        updated.update(input.entries)
        yield "updated_dictionary", updated


class GetDictionaryValueBlock(Block):
    id = "get_dictionary_value_block"
    inline = True
    name = "Get dictionary value"
    description = (
        "Looks up `key` in a dictionary: yields the value on `value`, or the key on `missing` "
        "when it is absent (so the graph can branch on it)."
    )
    categories = ("data",)
    cost_per_run = 0

    class Input(BaseModel):
        dictionary: dict[str, Any] = Field(title="Dictionary", description="Where to look.")
        key: str = Field(title="Key", description="The key to look up.")

    class Output(BaseModel):
        value: Any = Field(title="Value", description="The value under the key.")
        missing: str = Field(title="Missing", description="The key, when it is absent.")

    examples = (
        BlockExample(input={"dictionary": {"a": [1]}, "key": "a"}, outputs=[("value", [1])]),
        BlockExample(input={"dictionary": {"a": 1}, "key": "z"}, outputs=[("missing", "z")]),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        if input.key in input.dictionary:
            yield "value", input.dictionary[input.key]
        else:
            yield "missing", input.key


class RemoveFromDictionaryBlock(Block):
    id = "remove_from_dictionary_block"
    inline = True
    name = "Remove from dictionary"
    description = "Removes `key` from a copy of the dictionary; yields it and the removed value."
    categories = ("data",)
    cost_per_run = 0

    class Input(BaseModel):
        dictionary: dict[str, Any] = Field(title="Dictionary", description="The dictionary.")
        key: str = Field(title="Key", description="The key to remove.")

    class Output(BaseModel):
        updated_dictionary: dict[str, Any] = Field(
            title="Updated dictionary", description="The dictionary without the key."
        )
        removed_value: Any = Field(title="Removed value", description="The value removed.")

    examples = (
        BlockExample(
            input={"dictionary": {"a": 1, "b": 2}, "key": "a"},
            outputs=[("updated_dictionary", {"b": 2}), ("removed_value", 1)],
        ),
        BlockExample(
            input={"dictionary": {}, "key": "a"},
            outputs=[("error", "the dictionary has no key 'a'")],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        if input.key not in input.dictionary:
            raise BlockError(f"the dictionary has no key {input.key!r}")
        updated = dict(input.dictionary)
        removed = updated.pop(input.key)
        yield "updated_dictionary", updated
        yield "removed_value", removed
