"""The public JSON shapes (snake_case). Request bodies and responses are kept apart; request
models forbid unknown fields, except that a graph body ignores the server-owned fields of a
fetched graph (id, version, is_active, created_at, schemas) so a GET result can be PUT back."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentloom_common.problem import Problem
from agentloom_gateway.scopes import Scope
from agentloom_gateway.text import PlainName, PlainText

MAX_INT32 = 2**31 - 1
_Strict = ConfigDict(extra="forbid")


class NodeIn(BaseModel):
    model_config = _Strict

    id: str = Field(min_length=1, max_length=128, description="Node id, unique in the graph.")
    block_id: str = Field(min_length=1, max_length=128)
    input_default: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict, description="E.g. editor position.")


class LinkIn(BaseModel):
    model_config = _Strict

    id: str | None = Field(default=None, max_length=128, description="Assigned when omitted.")
    source_id: str = Field(min_length=1, max_length=128)
    source_name: str = Field(min_length=1, max_length=128, description="Output pin.")
    sink_id: str = Field(min_length=1, max_length=128)
    sink_name: str = Field(min_length=1, max_length=128, description="Input pin.")
    is_static: bool = False


class GraphIn(BaseModel):
    """A graph to create, or the new content of a graph (which makes a new version)."""

    model_config = ConfigDict(extra="ignore")

    name: PlainName = Field(min_length=1, max_length=200)
    description: PlainText = Field(default="", max_length=10_000)
    nodes: list[NodeIn] = Field(default_factory=list)
    links: list[LinkIn] = Field(default_factory=list)


class Node(BaseModel):
    id: str
    block_id: str
    input_default: dict[str, Any]
    metadata: dict[str, Any]


class Link(BaseModel):
    id: str
    source_id: str
    source_name: str
    sink_id: str
    sink_name: str
    is_static: bool


class Graph(BaseModel):
    id: str
    version: int
    is_active: bool
    name: str
    description: str
    nodes: list[Node]
    links: list[Link]
    created_at: datetime | None
    input_schema: dict[str, Any] = Field(description="JSON Schema of the graph's inputs.")
    output_schema: dict[str, Any] = Field(description="JSON Schema of the graph's outputs.")


class GraphList(BaseModel):
    graphs: list[Graph] = Field(description="The active version of each graph.")
    next_page_token: str | None = Field(description="Pass as `page_token`; null on the last page.")


class GraphVersions(BaseModel):
    graphs: list[Graph] = Field(description="Every version of the graph.")


class ActiveVersionIn(BaseModel):
    model_config = _Strict

    active_graph_version: int = Field(ge=1, le=MAX_INT32)


class ExecuteIn(BaseModel):
    model_config = _Strict

    inputs: dict[str, Any] = Field(default_factory=dict, description="Graph inputs by name.")
    credentials_inputs: dict[str, Any] = Field(
        default_factory=dict,
        description="Which stored credential a block uses, by provider: "
        '`{"openai": {"id": "<credential id>"}}`. Without one, the platform\'s default.',
    )
    max_credits: int | None = Field(
        default=None,
        ge=0,
        le=10**12,
        description="A credit cap for this execution: past it, the execution fails.",
    )


class ExecutionStatus(StrEnum):
    UNSPECIFIED = "UNSPECIFIED"
    INCOMPLETE = "INCOMPLETE"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class ExecutionStats(BaseModel):
    node_count: int
    duration_ms: int
    cost: int = Field(description="Credits charged so far.")


class Execution(BaseModel):
    id: str
    graph_id: str
    graph_version: int
    status: ExecutionStatus
    inputs: dict[str, Any]
    outputs: dict[str, list[Any]] = Field(description="Graph outputs: {name: [values...]}.")
    error: str | None
    created_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    stats: ExecutionStats
    max_credits: int | None = Field(default=None, description="The credit cap, if any.")


class ExecutionList(BaseModel):
    executions: list[Execution]
    next_page_token: str | None = Field(description="Pass as `page_token`; null on the last page.")


class NodeExecution(BaseModel):
    id: str
    node_id: str
    block_id: str
    status: ExecutionStatus
    inputs: dict[str, Any]
    outputs: dict[str, list[Any]] = Field(
        description="Values by output pin, in the order the block yielded them."
    )
    error: str | None
    attempt: int
    cost: int
    created_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None


class ExecutionResults(BaseModel):
    execution: Execution
    outputs: dict[str, list[Any]] = Field(description="Graph outputs: {name: [values...]}.")
    node_executions: list[NodeExecution]


class BlockKind(StrEnum):
    UNSPECIFIED = "UNSPECIFIED"
    STANDARD = "STANDARD"
    INPUT = "INPUT"
    OUTPUT = "OUTPUT"
    NOTE = "NOTE"


class BlockCost(BaseModel):
    per_run: int = Field(description="Credits charged per run.")


class Block(BaseModel):
    id: str
    name: str
    description: str
    categories: list[str]
    kind: BlockKind
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    cost: BlockCost
    accepts_extra_inputs: bool


class UserOut(BaseModel):
    id: str
    email: str | None
    name: str
    role: str
    timezone: str


class UserUpdate(BaseModel):
    model_config = _Strict

    name: PlainName | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, max_length=64, description="IANA time zone.")


class Credits(BaseModel):
    credits: int = Field(description="Current balance, in credits.")


class ApiKeyIn(BaseModel):
    model_config = _Strict

    name: PlainName = Field(min_length=1, max_length=200)
    expires_at: datetime | None = Field(default=None, description="With a time zone.")
    scopes: list[Scope] | None = Field(
        default=None,
        max_length=32,
        description="Default: every scope of a plain user the caller has. Never more than "
        "the caller has.",
    )


class ApiKeyUpdate(BaseModel):
    model_config = _Strict

    name: PlainName | None = Field(default=None, min_length=1, max_length=200)
    scopes: list[Scope] | None = Field(default=None, max_length=32)


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str = Field(description="The non-secret start of the key, e.g. `agl_3kT9...`.")
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    suspended_at: datetime | None = None


class ApiKeyCreated(ApiKeyOut):
    api_key: str = Field(description="The full key. Shown only in this response.")


class ApiKeyList(BaseModel):
    api_keys: list[ApiKeyOut]


class Health(BaseModel):
    status: str


class InsufficientCreditsProblem(Problem):
    """402: the balance does not cover the run."""

    balance: int | None = Field(default=None, description="Current balance, in credits.")
