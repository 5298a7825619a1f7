"""Typed inputs of a graph (boolean, choice, list, object, secret): the scheduler fills
`value` from the execution's inputs under the block's `name`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockError, BlockExample, BlockKind


def _name(default: str) -> Any:
    return Field(
        default=default,
        min_length=1,
        title="Name",
        description="The name of the graph input this block reads.",
    )


def _title() -> Any:
    return Field(default=None, title="Title", description="A label for the input in forms.")


def _description() -> Any:
    return Field(
        default=None,
        title="Description",
        description="Help text for the input in forms and in the graph's input schema.",
    )


def _missing(name: str) -> BlockError:
    return BlockError(f"graph input {name!r} was not provided")


class BooleanInputBlock(Block):
    id = "boolean_input_block"
    inline = True
    name = "Boolean input"
    description = "A yes/no input of the graph, passed on through its `boolean` pin."
    categories = ("input",)
    kind = BlockKind.INPUT
    cost_per_run = 0

    class Input(BaseModel):
        name: str = _name("flag")
        value: bool | None = Field(
            default=None, title="Value", description="True or false; filled from the inputs."
        )
        title: str | None = _title()
        description: str | None = _description()

    class Output(BaseModel):
        boolean: bool = Field(title="Boolean", description="The value given.")

    examples = (
        BlockExample(input={"name": "verbose", "value": True}, outputs=[("boolean", True)]),
        BlockExample(
            input={"name": "verbose"},
            outputs=[("error", "graph input 'verbose' was not provided")],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        if input.value is None:
            raise _missing(input.name)
        yield "boolean", input.value


class ChoiceInputBlock(Block):
    id = "choice_input_block"
    inline = True
    name = "Choice input"
    description = (
        "An input of the graph whose value must be one of `options` (a drop-down in forms), "
        "passed on through its `choice` pin."
    )
    categories = ("input",)
    kind = BlockKind.INPUT
    cost_per_run = 0

    class Input(BaseModel):
        name: str = _name("choice")
        value: str | None = Field(
            default=None, title="Value", description="The option chosen; filled from the inputs."
        )
        options: list[str] = Field(
            default_factory=list,
            title="Options",
            description="The values allowed (any value when empty).",
        )
        title: str | None = _title()
        description: str | None = _description()

    class Output(BaseModel):
        choice: str = Field(title="Choice", description="The option chosen.")

    examples = (
        BlockExample(
            input={"name": "tone", "value": "formal", "options": ["formal", "casual"]},
            outputs=[("choice", "formal")],
        ),
        BlockExample(
            input={"name": "tone", "value": "rude", "options": ["formal", "casual"]},
            outputs=[
                ("error", "graph input 'tone' must be one of ['formal', 'casual'], not 'rude'")
            ],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        if input.value is None:
            raise _missing(input.name)
        if input.options and input.value not in input.options:
            raise BlockError(
                f"graph input {input.name!r} must be one of {input.options}, not {input.value!r}"
            )
        yield "choice", input.value


class ListInputBlock(Block):
    id = "list_input_block"
    inline = True
    name = "List input"
    description = "A list input of the graph, passed on through its `items` pin."
    categories = ("input", "data")
    kind = BlockKind.INPUT
    cost_per_run = 0

    class Input(BaseModel):
        name: str = _name("items")
        value: list[Any] | None = Field(
            default=None, title="Value", description="The list given; filled from the inputs."
        )
        title: str | None = _title()
        description: str | None = _description()

    class Output(BaseModel):
        items: list[Any] = Field(title="Items", description="The list given.")

    examples = (
        BlockExample(input={"name": "urls", "value": ["a", "b"]}, outputs=[("items", ["a", "b"])]),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        if input.value is None:
            raise _missing(input.name)
        yield "items", input.value


class ObjectInputBlock(Block):
    id = "object_input_block"
    inline = True
    name = "Object input"
    description = "A JSON object input of the graph, passed on through its `data` pin."
    categories = ("input", "data")
    kind = BlockKind.INPUT
    cost_per_run = 0

    class Input(BaseModel):
        name: str = _name("object")
        value: dict[str, Any] | None = Field(
            default=None, title="Value", description="The object given; filled from the inputs."
        )
        title: str | None = _title()
        description: str | None = _description()

    class Output(BaseModel):
        data: dict[str, Any] = Field(title="Data", description="The object given.")

    examples = (
        BlockExample(
            input={"name": "person", "value": {"name": "Ada", "age": 36}},
            outputs=[("data", {"name": "Ada", "age": 36})],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        if input.value is None:
            raise _missing(input.name)
        yield "data", input.value


class SecretInputBlock(Block):
    id = "secret_input_block"
    inline = True
    name = "Secret input"
    description = (
        "A secret input of the graph (a password, a token): forms mask it. It is passed on "
        "through its `secret` pin; whatever it is linked to sees it."
    )
    categories = ("input",)
    kind = BlockKind.INPUT
    cost_per_run = 0

    class Input(BaseModel):
        name: str = _name("secret")
        value: str | None = Field(
            default=None,
            title="Value",
            description="The secret given; filled from the inputs.",
            json_schema_extra={"secret": True, "format": "password"},
        )
        title: str | None = _title()
        description: str | None = _description()

    class Output(BaseModel):
        secret: str = Field(
            title="Secret", description="The secret given.", json_schema_extra={"secret": True}
        )

    examples = (
        BlockExample(input={"name": "token", "value": "s3cr3t"}, outputs=[("secret", "s3cr3t")]),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        if input.value is None:
            raise _missing(input.name)
        yield "secret", input.value
