"""The block contract: what a block author writes, and nothing of how it is run.

A block is a class with a stable readable id, schemas as pydantic models, a cost, examples,
and an async generator `run(input, context)` that yields `(output_name, value)` pairs. The
runner owns everything else (claiming, timeouts, charging, storing outputs).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel

ERROR_PIN = "error"


class BlockKind(enum.Enum):
    STANDARD = "standard"
    INPUT = "input"
    OUTPUT = "output"
    NOTE = "note"


class BlockError(Exception):
    """A failure the block reports. `retryable` says whether running it again could help."""

    retryable = False


class RetryableBlockError(BlockError):
    """A transient failure (a timeout, a 5xx, a rate limit from a provider)."""

    retryable = True


@dataclass(frozen=True)
class PlatformConfig:
    """The platform's own defaults for the outside world (e.g. its OpenAI credentials)."""

    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: str | None = None
    http_timeout_s: float = 60.0


@dataclass
class BlockContext:
    """What a running block may know: its own ids, its credentials, a logger, cancellation."""

    user_id: str
    graph_id: str
    execution_id: str
    node_id: str
    node_execution_id: str
    config: PlatformConfig = field(default_factory=PlatformConfig)
    credentials: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("agentloom.block"))
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class BlockExample:
    """An input and the outputs the block must yield for it, in order."""

    input: dict[str, Any]
    outputs: list[tuple[str, Any]]
    description: str = ""


class Block:
    """Base class of every block. Subclasses set the class attributes and implement `run`."""

    id: ClassVar[str]
    name: ClassVar[str]
    description: ClassVar[str]
    categories: ClassVar[tuple[str, ...]] = ()
    kind: ClassVar[BlockKind] = BlockKind.STANDARD
    cost_per_run: ClassVar[int] = 1
    # Extra input pins beyond the schema are accepted and passed as `input.model_extra`.
    accepts_extra_inputs: ClassVar[bool] = False
    Input: ClassVar[type[BaseModel]]
    Output: ClassVar[type[BaseModel]]
    examples: ClassVar[tuple[BlockExample, ...]] = ()

    def run(self, input: Any, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        raise NotImplementedError

    @classmethod
    def input_schema(cls) -> dict[str, Any]:
        schema = cls.Input.model_json_schema()
        if cls.accepts_extra_inputs:
            schema["additionalProperties"] = True
        return schema

    @classmethod
    def output_schema(cls) -> dict[str, Any]:
        """The output pins, plus the `error` pin every block has."""
        schema = cls.Output.model_json_schema()
        properties = schema.setdefault("properties", {})
        properties.setdefault(
            ERROR_PIN, {"type": "string", "title": "Error", "description": "Why the block failed."}
        )
        return schema

    @classmethod
    def input_pins(cls) -> set[str]:
        return set(cls.Input.model_fields)

    @classmethod
    def output_pins(cls) -> set[str]:
        return set(cls.Output.model_fields) | {ERROR_PIN}

    @classmethod
    def required_inputs(cls) -> set[str]:
        return {name for name, f in cls.Input.model_fields.items() if f.is_required()}

    @classmethod
    def graph_io_name(cls, input_default: Mapping[str, Any]) -> str | None:
        """For input and output blocks: the graph input/output name this node stands for."""
        if cls.kind not in (BlockKind.INPUT, BlockKind.OUTPUT):
            return None
        name = input_default.get("name")
        if name is None:
            field_info = cls.Input.model_fields.get("name")
            name = None if field_info is None or field_info.is_required() else field_info.default
        return str(name) if name is not None else None
