"""Lists: create, add to, get an item, remove, concatenate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockError, BlockExample


class CreateListBlock(Block):
    id = "create_list_block"
    inline = True
    name = "Create list"
    description = "Yields a list of the given values, in order."
    categories = ("data",)
    cost_per_run = 0

    class Input(BaseModel):
        values: list[Any] = Field(
            default_factory=list, title="Values", description="The elements of the list."
        )

    class Output(BaseModel):
        items: list[Any] = Field(title="List", description="The list.")

    examples = (
        BlockExample(input={"values": [1, "two", None]}, outputs=[("items", [1, "two", None])]),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        yield "items", list(input.values)


class AddToListBlock(Block):
    id = "add_to_list_block"
    inline = True
    name = "Add to list"
    description = (
        "Inserts `entry` (when given) and then every element of `entries` into a copy of the "
        "list at `position` (the end when empty; negative counts from the end)."
    )
    categories = ("data",)
    cost_per_run = 0

    class Input(BaseModel):
        items: list[Any] = Field(
            default_factory=list, title="List", description="The list to add to."
        )
        entry: Any = Field(default=None, title="Entry", description="One element to add.")
        entries: list[Any] = Field(
            default_factory=list, title="Entries", description="More elements to add."
        )
        position: int | None = Field(
            default=None, title="Position", description="Where to insert (the end when empty)."
        )

    class Output(BaseModel):
        updated_list: list[Any] = Field(
            title="Updated list", description="The list with the additions."
        )

    examples = (
        BlockExample(input={"items": [1, 2], "entry": 3}, outputs=[("updated_list", [1, 2, 3])]),
        BlockExample(
            input={"items": ["c"], "entries": ["a", "b"], "position": 0},
            outputs=[("updated_list", ["a", "b", "c"])],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        new = ([input.entry] if input.entry is not None else []) + list(input.entries)
        updated = list(input.items)
        position = len(updated) if input.position is None else input.position
        updated[position:position] = new
        yield "updated_list", updated


class GetListItemBlock(Block):
    id = "get_list_item_block"
    inline = True
    name = "Get list item"
    description = "Yields the element at `index` (0 is the first, -1 the last)."
    categories = ("data",)
    cost_per_run = 0

    class Input(BaseModel):
        items: list[Any] = Field(title="List", description="The list.")
        index: int = Field(default=0, title="Index", description="Which element.")

    class Output(BaseModel):
        item: Any = Field(title="Item", description="The element.")

    examples = (
        BlockExample(input={"items": ["a", "b", "c"], "index": -1}, outputs=[("item", "c")]),
        BlockExample(
            input={"items": ["a"], "index": 3},
            outputs=[("error", "index 3 is out of range for a list of 1")],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        if not -len(input.items) <= input.index < len(input.items):
            raise BlockError(
                f"index {input.index} is out of range for a list of {len(input.items)}"
            )
        yield "item", input.items[input.index]


class RemoveFromListBlock(Block):
    id = "remove_from_list_block"
    inline = True
    name = "Remove from list"
    description = (
        "Removes from a copy of the list the element at `index`, or else the first element "
        "equal to `value`; yields the list and the element removed."
    )
    categories = ("data",)
    cost_per_run = 0

    class Input(BaseModel):
        items: list[Any] = Field(title="List", description="The list.")
        index: int | None = Field(
            default=None, title="Index", description="The position to remove."
        )
        value: Any = Field(
            default=None, title="Value", description="The value to remove (when no index)."
        )

    class Output(BaseModel):
        updated_list: list[Any] = Field(title="Updated list", description="The list after.")
        removed_item: Any = Field(title="Removed item", description="The element removed.")

    examples = (
        BlockExample(
            input={"items": ["a", "b", "c"], "index": 1},
            outputs=[("updated_list", ["a", "c"]), ("removed_item", "b")],
        ),
        BlockExample(
            input={"items": [1, 2, 2], "value": 2},
            outputs=[("updated_list", [1, 2]), ("removed_item", 2)],
        ),
        BlockExample(input={"items": [1], "value": 5}, outputs=[("error", "5 is not in the list")]),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        updated = list(input.items)
        if input.index is not None:
            if not -len(updated) <= input.index < len(updated):
                raise BlockError(
                    f"index {input.index} is out of range for a list of {len(updated)}"
                )
            removed = updated.pop(input.index)
        else:
            if input.value not in updated:
                raise BlockError(f"{input.value!r} is not in the list")
            removed = updated.pop(updated.index(input.value))
        yield "updated_list", updated
        yield "removed_item", removed


class ConcatenateListsBlock(Block):
    id = "concatenate_lists_block"
    inline = True
    name = "Concatenate lists"
    description = "Joins several lists into one, in order."
    categories = ("data",)
    cost_per_run = 0

    class Input(BaseModel):
        lists: list[list[Any]] = Field(title="Lists", description="The lists to join.")

    class Output(BaseModel):
        concatenated_list: list[Any] = Field(
            title="Concatenated list", description="All the elements, in order."
        )

    examples = (
        BlockExample(
            input={"lists": [[1, 2], [], [3]]}, outputs=[("concatenated_list", [1, 2, 3])]
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        yield "concatenated_list", [item for part in input.lists for item in part]
