"""The example client of the reference design manual (section 1.2.2), as written there,
plus the two reads it leaves to the reader: an execution, and its results.

    uv run python examples/reference_client.py          # uses .agentloom/dev.json
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx


class AutoGPTClient:
    """AutoGPT-platform-style client: authentication, error handling, the calls."""

    def __init__(self, base_url: str, api_key: str):
        self.base_url = base_url.rstrip("/")
        self.headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
        }
        self.client = httpx.AsyncClient(headers=self.headers)

    async def create_graph(self, graph_data: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(f"{self.base_url}/api/graphs", json=graph_data)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def execute_graph(
        self, graph_id: str, inputs: dict[str, Any], graph_version: int | None = None
    ) -> dict[str, Any]:
        url = f"{self.base_url}/api/graphs/{graph_id}/execute"
        if graph_version:
            url += f"/{graph_version}"
        response = await self.client.post(url, json={"inputs": inputs, "credentials_inputs": {}})
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def get_execution(self, exec_id: str) -> dict[str, Any]:
        response = await self.client.get(f"{self.base_url}/api/executions/{exec_id}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def get_results(self, exec_id: str) -> dict[str, Any]:
        response = await self.client.get(f"{self.base_url}/api/executions/{exec_id}/results")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def wait(self, exec_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
        """Poll until the execution is COMPLETED, FAILED or CANCELLED."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            execution = await self.get_execution(exec_id)
            if execution["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
                return execution
            if loop.time() > deadline:
                raise TimeoutError(f"execution {exec_id} still {execution['status']}")
            await asyncio.sleep(0.1)

    async def aclose(self) -> None:
        await self.client.aclose()


SUMMARY_GRAPH: dict[str, Any] = {
    "name": "API创建的文本摘要流程",
    "description": "通过API创建的示例工作流",
    "nodes": [
        {
            "id": "text_input",
            "block_id": "text_input_block",
            "input_default": {},
            "metadata": {"position": {"x": 0, "y": 0}},
        },
        {
            "id": "summarize",
            "block_id": "llm_call_block",
            "input_default": {
                "model": "gpt-4",
                "prompt": "请简洁地总结以下内容:\n\n{input_text}",
                "max_tokens": 150,
            },
            "metadata": {"position": {"x": 200, "y": 0}},
        },
    ],
    "links": [
        {
            "source_id": "text_input",
            "sink_id": "summarize",
            "source_name": "text",
            "sink_name": "input_text",
        }
    ],
}


async def main() -> None:
    dev = json.loads(Path(".agentloom/dev.json").read_text())
    client = AutoGPTClient(base_url=dev["gateway_url"], api_key=dev["api_key"])
    graph = await client.create_graph(SUMMARY_GRAPH)
    print(f"创建图成功,ID: {graph['id']}")
    execution = await client.execute_graph(
        graph_id=graph["id"], inputs={"text": "这是一段需要摘要的长文本..."}
    )
    print(f"执行开始,执行ID: {execution['id']}")
    finished = await client.wait(execution["id"])
    results = await client.get_results(execution["id"])
    print(f"status: {finished['status']}")
    for node in results["node_executions"]:
        print(f"  {node['node_id']}: {json.dumps(node['outputs'], ensure_ascii=False)}")
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
