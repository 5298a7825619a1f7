"""`make run`: the whole platform on this machine, ready to use.

Migrates, starts every service as its own process, makes a demo user with an API key and
an example graph, prints the gateway URL and the key, and writes them to
`.agentloom/dev.json` (`gateway_url`, `api_key`) for scripts. Ctrl-C stops everything.

Without `OPENAI_BASE_URL` in the environment, a local OpenAI-compatible dev server answers
the LLM blocks (deterministic text), so the platform runs offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from agentloom_devkit import resources
from agentloom_devkit.fake_openai import FakeOpenAI
from agentloom_devkit.stack import Ports, Stack, StackConfig

STATE_DIR = Path(".agentloom")
DEMO_EMAIL = "demo@agentloom.local"
DEV_LLM_PORT = 8090

EXAMPLE_GRAPH: dict[str, Any] = {
    "name": "文本摘要工作流",
    "description": "使用LLM对输入文本进行摘要 (the reference manual's example 1.2.1)",
    "nodes": [
        {
            "id": "input_node",
            "block_id": "text_input_block",
            "input_default": {},
            "metadata": {"position": {"x": 100, "y": 100}},
        },
        {
            "id": "llm_node",
            "block_id": "llm_call_block",
            "input_default": {"model": "gpt-4", "prompt": "请对以下文本进行摘要:{text}"},
            "metadata": {"position": {"x": 300, "y": 100}},
        },
    ],
    "links": [
        {
            "source_id": "input_node",
            "sink_id": "llm_node",
            "source_name": "text",
            "sink_name": "text",
        }
    ],
}


async def _demo_user(stack: Stack) -> tuple[str, str]:
    """The demo user (made once, kept across runs) and a fresh API key for it."""
    user_id = await _existing_user_id(stack.config.database, DEMO_EMAIL)
    if user_id is None:
        return await stack.create_user(DEMO_EMAIL, "Demo")
    key = json.loads(
        await stack.run_module(
            ["agentloom_gateway", "create-api-key", "--user-id", user_id, "--name", "dev"]
        )
    )
    return user_id, str(key["api_key"])


async def _existing_user_id(database: str, email: str) -> str | None:
    connection = await asyncpg.connect(resources.database_url(database).replace("+asyncpg", ""))
    try:
        found = await connection.fetchval("SELECT id FROM identity.users WHERE email = $1", email)
    finally:
        await connection.close()
    return None if found is None else str(found)


async def _example_graph(gateway_url: str, api_key: str) -> str:
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=gateway_url, headers=headers, timeout=10) as client:
        listing = (await client.get("/api/graphs")).json()
        for graph in listing.get("graphs", []):
            if graph["name"] == EXAMPLE_GRAPH["name"]:
                return str(graph["id"])
        created = await client.post("/api/graphs", json=EXAMPLE_GRAPH)
        created.raise_for_status()
        return str(created.json()["id"])


async def run() -> None:
    STATE_DIR.mkdir(exist_ok=True)
    dev_llm: FakeOpenAI | None = None
    openai_base_url = os.environ.get("OPENAI_BASE_URL")
    openai_api_key = os.environ.get("OPENAI_API_KEY")
    if not openai_base_url:
        dev_llm = FakeOpenAI(port=DEV_LLM_PORT)
        openai_base_url = dev_llm.start()
        openai_api_key = openai_api_key or "dev-llm-key"
    stack = Stack(
        StackConfig(
            database=os.environ.get("AGENTLOOM_DEV_DATABASE", "agentloom"),
            vhost=os.environ.get("AGENTLOOM_DEV_VHOST", "agentloom"),
            ports=Ports(),
            runners=int(os.environ.get("AGENTLOOM_DEV_RUNNERS", "2")),
            log_dir=STATE_DIR / "logs",
            openai_base_url=openai_base_url,
            openai_api_key=openai_api_key,
        )
    )
    try:
        await stack.prepare()
        await stack.start()
        user_id, api_key = await _demo_user(stack)
        graph_id = await _example_graph(stack.gateway_url, api_key)
        dev = {
            "gateway_url": stack.gateway_url,
            "ws_url": stack.gateway_url.replace("http://", "ws://") + "/ws",
            "api_key": api_key,
            "user_id": user_id,
            "example_graph_id": graph_id,
            "openai_base_url": openai_base_url,
        }
        (STATE_DIR / "dev.json").write_text(json.dumps(dev, indent=2))
        print(f"\nAgentloom is running.\n  gateway:  {stack.gateway_url}  (docs at /docs)")
        print(f"  live events: {dev['ws_url']}  (docs/events.md)")
        print(f"  API key:  {api_key}\n  example graph: {graph_id}")
        if dev_llm is not None:
            print(
                f"  LLM:      local dev server at {openai_base_url}"
                " (set OPENAI_BASE_URL to use yours)"
            )
        print(
            f"  logs:     {STATE_DIR / 'logs'}/\n"
            f"  written to {STATE_DIR / 'dev.json'}; Ctrl-C stops."
        )
        await _wait_for_stop(stack)
    finally:
        stack.stop()
        if dev_llm is not None:
            dev_llm.stop()


async def _wait_for_stop(stack: Stack) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=2)
        stack.check_alive()
