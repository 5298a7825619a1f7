"""The gateway's REST API as the benchmark uses it: an httpx client with an API key, plus
waits that watch many executions with few requests (one list page covers 100)."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from bench.graphs import TERMINAL


class ApiError(RuntimeError):
    """A call answered something else than expected (status and body in the message)."""


@dataclass(frozen=True)
class Started:
    """An execution created through `POST .../execute`: its id, the wall-clock time the
    request was sent, and how long the request took."""

    execution_id: str
    sent_at: float
    post_s: float


def epoch(timestamp: str | None) -> float | None:
    """Seconds since the epoch of an ISO 8601 timestamp from the API (None stays None)."""
    return datetime.fromisoformat(timestamp).timestamp() if timestamp else None


def _json(response: httpx.Response, expected: int) -> Any:
    if response.status_code != expected:
        raise ApiError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:300]}"
        )
    return response.json()


# Connections per httpx client: its pool looks at every connection it holds for each
# request (an expiry check with a syscall each), so one client of 64 connections cost more
# CPU than the requests themselves under W2 (profiled). Several small clients hold the same
# connections in all.
CONNECTIONS_PER_CLIENT = 8


class Api:
    def __init__(self, base_url: str, api_key: str, *, connections: int = 256) -> None:
        per_client = min(CONNECTIONS_PER_CLIENT, connections)
        self.clients = [
            httpx.AsyncClient(
                base_url=base_url,
                headers={"Authorization": f"Bearer {api_key}"},
                limits=httpx.Limits(
                    max_connections=per_client, max_keepalive_connections=per_client
                ),
                timeout=httpx.Timeout(60.0),
            )
            for _ in range(max(1, connections // per_client))
        ]
        self._turn = itertools.count()
        # Requests wait for a connection here, not in httpx's pool: its pool does work for
        # every waiting request at each change, which with W4's thousand waiting requests
        # made the client itself use more CPU than the gateway (profiled). Same semantics.
        self._slots = asyncio.Semaphore(per_client * len(self.clients))

    @property
    def client(self) -> httpx.AsyncClient:
        return self.clients[next(self._turn) % len(self.clients)]

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async with self._slots:
            return await self.client.request(method, url, **kwargs)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()

    async def create_graph(self, spec: dict[str, Any]) -> str:
        graph = _json(await self.request("POST", "/api/graphs", json=spec), 201)
        return str(graph["id"])

    async def post_execute(
        self, graph_id: str, inputs: dict[str, Any]
    ) -> tuple[httpx.Response, float, float]:
        """The raw `POST /api/graphs/{id}/execute`: the response, when it was sent (wall
        clock) and how long it took (seconds)."""
        sent_at, started = time.time(), time.perf_counter()
        response = await self.request(
            "POST",
            f"/api/graphs/{graph_id}/execute",
            json={"inputs": inputs, "credentials_inputs": {}},
        )
        return response, sent_at, time.perf_counter() - started

    async def execute(self, graph_id: str, inputs: dict[str, Any]) -> Started:
        response, sent_at, took = await self.post_execute(graph_id, inputs)
        execution = _json(response, 201)
        return Started(execution_id=str(execution["id"]), sent_at=sent_at, post_s=took)

    async def execution(self, execution_id: str) -> dict[str, Any]:
        result: dict[str, Any] = _json(
            await self.request("GET", f"/api/executions/{execution_id}"), 200
        )
        return result

    async def results(self, execution_id: str) -> dict[str, Any]:
        result: dict[str, Any] = _json(
            await self.request("GET", f"/api/executions/{execution_id}/results"), 200
        )
        return result

    async def stop(self, graph_id: str, execution_id: str) -> None:
        _json(
            await self.request("POST", f"/api/graphs/{graph_id}/executions/{execution_id}/stop"),
            200,
        )

    async def executions_of(self, graph_id: str) -> list[dict[str, Any]]:
        """Every execution of a graph, following the pages."""
        found: list[dict[str, Any]] = []
        token = ""
        while True:
            params = {"graph_id": graph_id, "page_size": "100"}
            if token:
                params["page_token"] = token
            page = _json(await self.request("GET", "/api/executions", params=params), 200)
            found += page["executions"]
            token = page.get("next_page_token") or ""
            if not token:
                return found

    async def wait(self, execution_id: str, timeout_s: float, poll_s: float) -> dict[str, Any]:
        """Poll one execution until it is terminal; after the timeout, the last state seen.
        The first look comes one interval after the call (nothing ends the instant it is
        created): a read at once competed for the CPU with the very run being measured."""
        deadline = time.monotonic() + timeout_s
        while True:
            await asyncio.sleep(poll_s)
            execution = await self.execution(execution_id)
            if execution["status"] in TERMINAL or time.monotonic() > deadline:
                return execution

    async def wait_all(
        self, graph_id: str, ids: set[str], timeout_s: float, poll_s: float = 0.5
    ) -> dict[str, dict[str, Any]]:
        """Watch a graph's executions until every one of `ids` is terminal; after the timeout,
        the last state seen of each (callers check the status). Twice a second: figures come
        from the `ended_at` the platform records, so polling faster only loads the machine
        being measured (listing 200 executions ten times a second was a fifth of its CPU)."""
        deadline = time.monotonic() + timeout_s
        latest: dict[str, dict[str, Any]] = {}
        while True:
            for execution in await self.executions_of(graph_id):
                if execution["id"] in ids:
                    latest[execution["id"]] = execution
            done = [i for i in ids if latest.get(i, {}).get("status") in TERMINAL]
            if len(done) == len(ids) or time.monotonic() > deadline:
                return latest
            await asyncio.sleep(poll_s)
