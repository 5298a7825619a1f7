"""The reference manual's own examples (sections 1.2.1 and 1.2.2), as written there, through
the example client, against the whole platform."""

from __future__ import annotations

import copy

from reference_client import SUMMARY_GRAPH, AutoGPTClient

from agentloom_devkit.fake_openai import FakeOpenAI
from agentloom_devkit.stack import Stack

WEB_UI_GRAPH = {
    "name": "文本摘要工作流",
    "description": "使用LLM对输入文本进行摘要",
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


async def test_api_example_creates_executes_and_reads_results(
    client: AutoGPTClient, fake_openai: FakeOpenAI
) -> None:
    graph = await client.create_graph(copy.deepcopy(SUMMARY_GRAPH))
    assert graph["version"] == 1 and graph["is_active"] is True
    text = "这是一段需要摘要的长文本..."

    execution = await client.execute_graph(graph_id=graph["id"], inputs={"text": text})
    assert execution["status"] in ("QUEUED", "RUNNING", "COMPLETED")
    finished = await client.wait(execution["id"])
    assert finished["status"] == "COMPLETED", finished
    assert finished["graph_version"] == 1
    assert finished["stats"]["node_count"] == 2

    results = await client.get_results(execution["id"])
    by_node = {node["node_id"]: node for node in results["node_executions"]}
    assert by_node["text_input"]["outputs"] == {"text": [text]}
    summary = by_node["summarize"]
    assert summary["status"] == "COMPLETED"
    assert summary["inputs"]["input_text"] == text
    (response,) = summary["outputs"]["response"]
    assert response.startswith("summary: 请简洁地总结以下内容:")
    assert text in response

    sent = [r for r in fake_openai.requests() if text in str(r)]
    assert sent, "the LLM block never reached the OpenAI-compatible server"
    body = sent[-1]["body"]
    assert body["model"] == "gpt-4" and body["max_tokens"] == 150
    assert body["messages"][-1]["content"] == f"请简洁地总结以下内容:\n\n{text}"


async def test_execute_with_the_version_segment_pins_that_version(client: AutoGPTClient) -> None:
    graph = await client.create_graph(copy.deepcopy(SUMMARY_GRAPH))
    execution = await client.execute_graph(graph["id"], {"text": "版本一"}, graph_version=1)
    finished = await client.wait(execution["id"])
    assert finished["status"] == "COMPLETED"
    assert finished["graph_version"] == 1


async def test_web_ui_example_graph_runs(client: AutoGPTClient) -> None:
    graph = await client.create_graph(copy.deepcopy(WEB_UI_GRAPH))
    execution = await client.execute_graph(graph["id"], {"text": "hello world from agentloom"})
    finished = await client.wait(execution["id"])
    assert finished["status"] == "COMPLETED"
    results = await client.get_results(execution["id"])
    llm = next(n for n in results["node_executions"] if n["node_id"] == "llm_node")
    assert llm["outputs"]["response"] == [
        "summary: 请对以下文本进行摘要:hello world from agentloom"
    ]


def test_every_service_is_its_own_process(stack: Stack) -> None:
    pids = {service.name: service.process.pid for service in stack.processes if service.process}
    expected = {"blocks", "graphs", "billing", "notify", "executor-api", "scheduler", "gateway"}
    assert expected <= pids.keys()
    assert len(set(pids.values())) == len(pids)
    stack.check_alive()
