"""The block contract: what a block author writes, and nothing of how it is run.

A block is a class with a stable readable id, schemas as pydantic models, a cost, examples,
and an async generator `run(input, context)` that yields `(output_name, value)` pairs. The
runner owns everything else (claiming, timeouts, charging, storing outputs).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

ERROR_PIN = "error"
# The output pin of a tool-using block (`uses_tools`) that links to the nodes it may call.
TOOLS_PIN = "tools"
# Examples that need a customer's web server use this base URL; the generic example test
# serves it from a local server (and replaces it in expected outputs too).
EXAMPLE_SERVER_URL = "http://example-server.test"


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
    """The platform's own defaults for the outside world (e.g. its OpenAI credentials).

    `allow_private_network` lets blocks reach loopback/private addresses (self-hosting);
    `allowed_networks` lets them reach only the CIDRs listed. Both are operator settings.
    """

    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: str | None = None
    http_timeout_s: float = 60.0
    anthropic_base_url: str = "https://api.anthropic.com"
    anthropic_api_key: str | None = None
    ollama_base_url: str = "http://localhost:11434/v1"
    allow_private_network: bool = False
    allowed_networks: tuple[str, ...] = ()
    http_max_response_bytes: int = 10_000_000
    max_wait_s: float = 600.0
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_security: str = "starttls"

    def default_credentials(self, provider: str) -> dict[str, str]:
        """The platform's own credentials for `provider`, used when the user has none."""
        defaults: dict[str, dict[str, str | None]] = {
            "openai": {"api_key": self.openai_api_key},
            "anthropic": {"api_key": self.anthropic_api_key},
            "smtp": {"username": self.smtp_username, "password": self.smtp_password},
        }
        return {k: v for k, v in defaults.get(provider, {}).items() if v}


class KeyValueStore(Protocol):
    """A user's persistent key-value memory; the runner provides one scoped to the user."""

    async def get(self, key: str) -> Any | None: ...

    async def set(self, key: str, value: Any) -> None: ...

    async def delete(self, key: str) -> None: ...


@dataclass(frozen=True)
class CredentialsField:
    """A credential a block needs: which provider, which kind (api_key, user_password...)."""

    provider: str
    kind: str = "api_key"
    description: str = ""
    # False: the platform's own default credentials (PlatformConfig) may stand in.
    required: bool = False


@dataclass(frozen=True)
class BlockCosts:
    """What a run costs, in credits; pure data that billing reads. per_run=None: cost_per_run."""

    per_run: int | None = None
    per_kb_in: int = 0
    per_kb_out: int = 0
    per_second: int = 0
    per_1k_tokens: int = 0


@dataclass(frozen=True)
class Tool:
    """A node an agent block may call: a name the model uses, what it does, and the JSON
    Schema of the arguments the model fills in (the node's linked input pins)."""

    name: str
    description: str
    parameters: Mapping[str, Any]


class ToolError(BlockError):
    """A tool call that could not run (unknown tool, bad arguments, the node failed): the
    agent shows the model this message, and the model may try again."""


# Runs one tool call: (tool name, arguments) -> the node's outputs, {pin: value}.
ToolCaller = Callable[[str, Mapping[str, Any]], Awaitable[dict[str, Any]]]


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
    store: KeyValueStore | None = None
    # For blocks with `uses_tools`: the nodes linked to the block's `tools` pin, and how to
    # run one (the engine runs it as a node execution of this execution, recorded and charged).
    tools: tuple[Tool, ...] = ()
    call_tool: ToolCaller | None = None

    def credential(self, provider: str, key: str = "api_key") -> str | None:
        """The user's credential for `provider`, else the platform's default, else None."""
        value = self.credentials.get(provider, {}).get(key)
        return value or self.config.default_credentials(provider).get(key)


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
    # Links from this block's outputs are static: they keep their last value for later runs.
    static_output: ClassVar[bool] = False
    # The nodes linked from this block's `tools` pin are offered to it as `context.tools`
    # instead of receiving values: the block calls them through `context.call_tool`.
    uses_tools: ClassVar[bool] = False
    # Pure and quick: no I/O, no waiting, no store, no credentials, bounded CPU. A runner
    # may run such a node right after the node that queued it, in the same transaction.
    inline: ClassVar[bool] = False
    credentials: ClassVar[tuple[CredentialsField, ...]] = ()
    costs: ClassVar[BlockCosts | None] = None
    Input: ClassVar[type[BaseModel]]
    Output: ClassVar[type[BaseModel]]
    examples: ClassVar[tuple[BlockExample, ...]] = ()

    def run(self, input: Any, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        raise NotImplementedError

    @classmethod
    def cost_declaration(cls) -> BlockCosts:
        """The block's costs, with per_run filled from cost_per_run when not declared."""
        costs = cls.costs or BlockCosts()
        if costs.per_run is None:
            costs = dataclasses.replace(costs, per_run=cls.cost_per_run)
        return costs

    @classmethod
    def input_schema(cls) -> dict[str, Any]:
        schema = _form_ready(cls.Input)
        if cls.accepts_extra_inputs:
            schema["additionalProperties"] = True
        if cls.credentials:
            # An annotation (unknown keywords are ignored by validators) for forms and clients.
            schema["x-credentials"] = [dataclasses.asdict(c) for c in cls.credentials]
        return schema

    @classmethod
    def output_schema(cls) -> dict[str, Any]:
        """The output pins, plus the `error` pin every block has."""
        schema = _form_ready(cls.Output)
        properties = schema.setdefault("properties", {})
        properties.setdefault(
            ERROR_PIN, {"type": "string", "title": "Error", "description": "Why the block failed."}
        )
        if cls.uses_tools and TOOLS_PIN in properties:
            # For the graphs service and builders: links from this pin name tools, not sinks.
            properties[TOOLS_PIN]["x-tools"] = True
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


def _form_ready(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema with what pydantic leaves out that a form needs: the title
    of a field whose type is a $ref (an enum), and defaults made by a default_factory."""
    schema = model.model_json_schema()
    properties = schema.get("properties", {})
    for name, info in model.model_fields.items():
        prop = properties.get(info.alias or name)
        if prop is None:
            continue
        if info.title and "title" not in prop:
            prop["title"] = info.title
        if "default" not in prop and info.default_factory is not None:
            try:
                default = info.get_default(call_default_factory=True, validated_data={})
                prop["default"] = json.loads(json.dumps(default))
            except (TypeError, ValueError):
                pass  # a default that is no JSON value is left out, as pydantic does
    return schema
