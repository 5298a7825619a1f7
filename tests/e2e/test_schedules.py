"""Schedules through the whole platform: two scheduler replicas fire every slot of a short
cron exactly once, even with one of them SIGKILLed mid-way; pause stops firing, resume
restarts it; bad input is a 422 naming the field. (DST: services/executor/tests/test_cron.py.)"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from helpers import User, graph, link, node

from agentloom_devkit import resources
from agentloom_devkit.stack import Stack

# Every 2 seconds (the 6th field is seconds); the test stack allows 1 s (tests/conftest.py).
EVERY_2S = "* * * * * */2"
TICK = graph(
    "tick",
    [
        node("in", "text_input_block", name="word"),
        node("wrap", "text_template_block", template="[{{ w }}]"),
        node("out", "output_block", name="result"),
    ],
    [link("in", "text", "wrap", "w"), link("wrap", "text", "out", "value")],
)


@pytest.fixture(scope="module")
async def user(stack: Stack) -> User:
    """One user of this module's own: the per-user schedule limit counts only these tests'
    schedules (each test deletes what it creates)."""
    return User(*await stack.create_user(f"{resources.unique_name('sched')}@example.com", "S"))


@pytest.fixture
async def api(stack: Stack, user: User) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"{stack.gateway_url}/api", headers={"X-API-Key": user.api_key}, timeout=30
    ) as client:
        yield client


async def _fires(stack: Stack, schedule_id: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(stack.database_url.replace("+asyncpg", ""))
    try:
        return list(
            await connection.fetch(
                "SELECT fire_time, execution_id, error FROM executor.schedule_fires "
                "WHERE schedule_id = $1 ORDER BY fire_time",
                uuid.UUID(schedule_id),
            )
        )
    finally:
        await connection.close()


async def _wait_for_fires(
    stack: Stack, schedule_id: str, count: int, timeout_s: float = 10
) -> list[asyncpg.Record]:
    deadline = time.monotonic() + timeout_s
    while True:
        fires = await _fires(stack, schedule_id)
        if len(fires) >= count:
            return fires
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(fires)} fires after {timeout_s}s, expected {count}")
        await asyncio.sleep(0.2)


async def _wait_terminal(api: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        execution: dict[str, Any] = (await api.get(f"/executions/{execution_id}")).json()
        if execution["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return execution
        assert time.monotonic() < deadline, f"execution {execution_id} never ended"
        await asyncio.sleep(0.1)


def _consecutive(times: list[datetime], step: timedelta) -> bool:
    return all(later - earlier == step for earlier, later in itertools.pairwise(times))


async def test_every_slot_fires_once_across_replicas_with_one_killed(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    graph_id = (await api.post("/graphs", json=TICK)).json()["id"]
    created = await api.post(
        f"/graphs/{graph_id}/schedules",
        json={"name": "tick", "cron": EVERY_2S, "inputs": {"word": "tick"}},
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    path = f"/graphs/{graph_id}/schedules/{schedule['id']}"
    assert created.headers["location"] == f"/api{path}"
    first_slot = datetime.fromisoformat(schedule["next_run_at"])
    try:
        await _wait_for_fires(stack, schedule["id"], 2)
        stack.kill("scheduler")  # SIGKILL one of the two replicas mid-stream
        await asyncio.sleep(1.0)
        stack.respawn("scheduler")
        await _wait_for_fires(stack, schedule["id"], 5, timeout_s=15)
        paused = await api.post(f"{path}/pause")
        assert paused.status_code == 200 and paused.json()["paused"] is True
        assert paused.json()["next_run_at"] is None
    finally:
        await api.post(f"{path}/pause")
    fires = await _fires(stack, schedule["id"])
    times = [fire["fire_time"] for fire in fires]
    # From the first slot on, every 2 s slot fired, none twice (no gap, no duplicate).
    assert times[0] == first_slot
    assert _consecutive(times, timedelta(seconds=2)), times
    assert all(fire["error"] is None for fire in fires)
    started = {str(fire["execution_id"]) for fire in fires}
    assert len(started) == len(fires)
    # Exactly those executions exist for the graph, and each one completes.
    listed = (await api.get("/executions", params={"graph_id": graph_id, "page_size": 100})).json()
    assert {execution["id"] for execution in listed["executions"]} == started
    for execution_id in started:
        finished = await _wait_terminal(api, execution_id)
        assert finished["status"] == "COMPLETED"
        assert finished["outputs"] == {"result": ["[tick]"]}
    got = (await api.get(path)).json()
    assert got["last_fired_at"] is not None
    assert datetime.fromisoformat(got["last_fired_at"]) == times[-1]
    assert (await api.delete(path)).status_code == 204


async def test_pause_stops_firing_and_resume_restarts_it(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    graph_id = (await api.post("/graphs", json=TICK)).json()["id"]
    schedule = (
        await api.post(
            f"/graphs/{graph_id}/schedules",
            json={"cron": "* * * * * *", "inputs": {"word": "p"}, "timezone": "Asia/Tokyo"},
        )
    ).json()
    path = f"/graphs/{graph_id}/schedules/{schedule['id']}"
    try:
        await _wait_for_fires(stack, schedule["id"], 1)
        assert (await api.post(f"{path}/pause")).status_code == 200
        paused_at = datetime.now(UTC)
        # A fire in progress when the pause landed commits before the pause (row lock).
        count = len(await _fires(stack, schedule["id"]))
        await asyncio.sleep(2.5)  # 2 slots pass while paused: none may fire
        assert len(await _fires(stack, schedule["id"])) == count
        resumed = await api.post(f"{path}/resume")
        assert resumed.status_code == 200 and resumed.json()["paused"] is False
        next_run = datetime.fromisoformat(resumed.json()["next_run_at"])
        assert next_run > paused_at
        fires = await _wait_for_fires(stack, schedule["id"], count + 1)
        # The first slot after resuming is the one announced, not a slot owed from the pause.
        assert fires[count]["fire_time"] == next_run
        listed = (await api.get("/schedules", params={"graph_id": graph_id})).json()
        assert [item["id"] for item in listed["schedules"]] == [schedule["id"]]
        assert listed["schedules"][0]["timezone"] == "Asia/Tokyo"
    finally:
        assert (await api.delete(path)).status_code == 204
    assert (await api.get(path)).status_code == 404


def _fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return {error["field"] for error in response.json()["errors"]}


async def test_invalid_schedules_are_422_naming_the_field_and_change_nothing(
    api: httpx.AsyncClient,
) -> None:
    graph_id = (await api.post("/graphs", json=TICK)).json()["id"]
    url = f"/graphs/{graph_id}/schedules"
    ok = {"cron": "0 9 * * *", "inputs": {"word": "x"}}
    assert _fields(await api.post(url, json={**ok, "cron": "61 * * * *"})) == {"body.cron"}
    assert _fields(await api.post(url, json={**ok, "cron": "* * *"})) == {"body.cron"}
    assert _fields(await api.post(url, json={**ok, "timezone": "Mars/Olympus"})) == {
        "body.timezone"
    }
    assert _fields(await api.post(url, json={**ok, "inputs": {"nope": 1}})) == {
        "body.inputs.nope",
        "body.inputs.word",
    }
    unknown = await api.post(f"/graphs/{uuid.uuid4()}/schedules", json=ok)
    assert unknown.status_code == 404 and unknown.json()["code"] == "GRAPH_NOT_FOUND"
    assert [error["field"] for error in unknown.json()["errors"]] == ["path.graph_id"]
    assert _fields(await api.post(url, json={**ok, "extra": 1})) == {"body.extra"}
    assert (await api.get(url)).json()["schedules"] == []


async def test_schedules_are_private_and_limited_per_user(
    stack: Stack, api: httpx.AsyncClient, bob: User
) -> None:
    graph_id = (await api.post("/graphs", json=TICK)).json()["id"]
    url = f"/graphs/{graph_id}/schedules"
    yearly = {"cron": "0 0 1 1 *", "inputs": {"word": "y"}}
    ids = []
    for _ in range(20):  # AGENTLOOM_MAX_SCHEDULES_PER_USER in the test stack
        response = await api.post(url, json=yearly)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    over = await api.post(url, json=yearly)
    assert over.status_code == 409 and over.json()["code"] == "SCHEDULE_LIMIT_REACHED"
    async with httpx.AsyncClient(
        base_url=f"{stack.gateway_url}/api", headers={"X-API-Key": bob.api_key}
    ) as other:
        assert (await other.get(f"{url}/{ids[0]}")).status_code == 404
        assert (await other.post(f"{url}/{ids[0]}/pause")).status_code == 404
        assert (await other.delete(f"{url}/{ids[0]}")).status_code == 404
        assert (await other.get("/schedules")).json()["schedules"] == []
    page = (await api.get("/schedules", params={"page_size": 12})).json()
    rest = (
        await api.get("/schedules", params={"page_size": 12, "page_token": page["next_page_token"]})
    ).json()
    assert [s["id"] for s in page["schedules"] + rest["schedules"]] == ids[::-1]
    assert rest["next_page_token"] is None
    for schedule_id in ids:
        assert (await api.delete(f"{url}/{schedule_id}")).status_code == 204


async def test_a_preset_fills_the_inputs_the_schedule_leaves_out(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    graph_id = (await api.post("/graphs", json=TICK)).json()["id"]
    url = f"/graphs/{graph_id}/schedules"
    preset = await api.post(
        "/presets", json={"name": "p", "graph_id": graph_id, "inputs": {"word": "preset"}}
    )
    assert preset.status_code == 201, preset.text
    unknown = await api.post(url, json={"cron": "0 9 * * *", "preset_id": str(uuid.uuid4())})
    assert "body.preset_id" in _fields(unknown)
    created = await api.post(url, json={"cron": "* * * * * *", "preset_id": preset.json()["id"]})
    assert created.status_code == 201, created.text
    schedule = created.json()
    try:
        fires = await _wait_for_fires(stack, schedule["id"], 1)
    finally:
        assert (await api.delete(f"{url}/{schedule['id']}")).status_code == 204
    finished = await _wait_terminal(api, str(fires[0]["execution_id"]))
    assert finished["outputs"] == {"result": ["[preset]"]}
