"""Sub-agents: a node that runs another graph as a child execution."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockError, BlockExample


class AgentExecutorBlock(Block):
    """Runs another graph (by id and version) as a child execution and yields its outputs,
    one pin per graph output name. The engine runs it: it starts the child and frees the
    runner; the node finishes when the child does. Stopping the parent stops the child."""

    id = "agent_executor_block"
    name = "Run agent"
    description = (
        "Run another graph as a sub-agent: its inputs come from `inputs` and from any extra "
        "pin, and each of its outputs comes out on a pin named after it."
    )
    categories = ("agent", "flow")
    cost_per_run = 0
    accepts_extra_inputs = True
    # The engine, not the runner's block call, carries this block out.
    runs_graph: ClassVar[bool] = True

    class Input(BaseModel):
        model_config = ConfigDict(extra="allow")
        graph_id: str = Field(title="Graph", description="Id of the graph to run.")
        graph_version: int = Field(
            default=0, ge=0, title="Version", description="Version to run; 0 means active."
        )
        inputs: dict[str, Any] = Field(
            default_factory=dict, title="Inputs", description="The child graph's inputs."
        )

    class Output(BaseModel):
        model_config = ConfigDict(extra="allow")

    examples: ClassVar[tuple[BlockExample, ...]] = (
        BlockExample(
            input={"graph_id": "00000000-0000-0000-0000-000000000000"},
            outputs=[("error", "agent_executor_block is run by the engine, not called directly")],
            description="Outside the engine the block only explains itself.",
        ),
    )

    @classmethod
    def output_schema(cls) -> dict[str, Any]:
        schema = super().output_schema()
        schema["additionalProperties"] = True
        return schema

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        raise BlockError("agent_executor_block is run by the engine, not called directly")
        yield  # pragma: no cover - makes this an async generator
