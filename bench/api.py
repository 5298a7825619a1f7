"""The gateway's REST API as the benchmark uses it: an aiohttp client with an API key, plus
waits that watch many executions with few requests (one list page covers 100)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from bench.graphs import TERMINAL

# What a request can fail with short of an answer (connection refused or reset, timeout).
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (aiohttp.ClientError, asyncio.TimeoutError)


class ApiError(RuntimeError):
    """A call answered something else than expected (status and body in the message)."""


@dataclass(frozen=True)
class Started:
    """An execution created through `POST .../execute`: its id, the wall-clock time the
    request was sent, and how long the request took."""

    execution_id: str
    sent_at: float
    post_s: float


@dataclass(frozen=True)
class Response:
    """An answer, read whole: the request it answers, its status and its body."""

    method: str
    path: str
    status_code: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def epoch(timestamp: str | None) -> float | None:
    """Seconds since the epoch of an ISO 8601 timestamp from the API (None stays None)."""
    return datetime.fromisoformat(timestamp).timestamp() if timestamp else None


def _json(response: Response, expected: int) -> Any:
    if response.status_code != expected:
        raise ApiError(
            f"{response.method} {response.path} answered "
            f"{response.status_code}: {response.text[:300]}"
        )
    return response.json()


class Api:
    """One aiohttp session holding up to `connections` keep-alive connections to the gateway.

    aiohttp, not httpx: the client runs on the same 2 cores as the platform it measures, and
    httpx cost 1.1 ms of CPU per request against 0.23 ms for aiohttp (a POST with a JSON
    body to a local server, 8 connections; bench/README.md), which under W4 was 2.8 ms of
    the ~20 ms of CPU each execution took on the machine."""

    def __init__(self, base_url: str, api_key: str, *, connections: int = 256) -> None:
        self._session = aiohttp.ClientSession(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            connector=aiohttp.TCPConnector(limit=connections),
            timeout=aiohttp.ClientTimeout(total=60.0),
        )

    async def request(self, method: str, url: str, **kwargs: Any) -> Response:
        async with self._session.request(method, url, **kwargs) as answer:
            body = await answer.read()
            return Response(method, answer.url.path, answer.status, body)

    async def aclose(self) -> None:
        await self._session.close()

    async def create_graph(self, spec: dict[str, Any]) -> str:
        graph = _json(await self.request("POST", "/api/graphs", json=spec), 201)
        return str(graph["id"])

    async def post_execute(
        self, graph_id: str, inputs: dict[str, Any]
    ) -> tuple[Response, float, float]:
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
