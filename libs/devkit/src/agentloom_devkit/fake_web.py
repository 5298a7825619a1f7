"""A customer's web server for tests of HTTP blocks: echo, JSON, a feed, redirects, slowness.

Routes (any method unless said):
  /echo             the request as JSON: method, path, query, headers, body text, json, form
  /json             {"name": "agentloom", "tags": ["a", "b"], "count": 2}
  /status/{code}    answers that status with {"status": code}
  /redirect?to=URL  302 to URL
  /slow/{seconds}   waits, then answers "done"
  /bytes/{n}        n bytes of "x"
  /feed.xml         a small RSS 2.0 feed (two items)
  /page.html        a small HTML page
Every request is recorded (`requests()`).
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from agentloom_devkit.servers import ThreadedServer

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
<title>Loom news</title><link>https://loom.example/</link><description>News</description>
<item><title>First post</title><link>https://loom.example/1</link>
<description>Hello &lt;b&gt;world&lt;/b&gt;</description>
<pubDate>Mon, 06 Jan 2025 10:00:00 GMT</pubDate><guid>post-1</guid></item>
<item><title>Second post</title><link>https://loom.example/2</link>
<description>More news</description>
<pubDate>Tue, 07 Jan 2025 12:30:00 GMT</pubDate><guid>post-2</guid></item>
</channel></rss>
"""

PAGE = """<!doctype html><html><head><title>Loom</title><style>p {color: red}</style>
<script>var secret = 1;</script></head>
<body><h1>Welcome</h1><p>Weave <b>agents</b> together.</p><ul><li>one</li><li>two</li></ul>
</body></html>
"""

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


class FakeWeb(ThreadedServer):
    """The fake web server, in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        super().__init__(self._create_app(), host=host, port=port, name="fake-web")

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _create_app(self) -> Starlette:
        async def echo(request: Request) -> Response:
            entry = await self._record(request)
            return JSONResponse(entry)

        async def json_doc(request: Request) -> Response:
            await self._record(request)
            return JSONResponse({"name": "agentloom", "tags": ["a", "b"], "count": 2})

        async def status(request: Request) -> Response:
            await self._record(request)
            code = int(request.path_params["code"])
            return JSONResponse({"status": code}, status_code=code)

        async def redirect(request: Request) -> Response:
            await self._record(request)
            return RedirectResponse(request.query_params.get("to", "/json"), status_code=302)

        async def slow(request: Request) -> Response:
            await self._record(request)
            await asyncio.sleep(float(request.path_params["seconds"]))
            return PlainTextResponse("done")

        async def many_bytes(request: Request) -> Response:
            await self._record(request)
            return PlainTextResponse("x" * int(request.path_params["n"]))

        async def feed(request: Request) -> Response:
            await self._record(request)
            return Response(FEED, media_type="application/rss+xml")

        async def page(request: Request) -> Response:
            await self._record(request)
            return Response(PAGE, media_type="text/html")

        routes = [
            Route("/echo", echo, methods=METHODS),
            Route("/json", json_doc, methods=METHODS),
            Route("/status/{code:int}", status, methods=METHODS),
            Route("/redirect", redirect, methods=METHODS),
            Route("/slow/{seconds:float}", slow, methods=METHODS),
            Route("/bytes/{n:int}", many_bytes, methods=METHODS),
            Route("/feed.xml", feed, methods=["GET"]),
            Route("/page.html", page, methods=["GET"]),
        ]
        return Starlette(routes=routes)

    async def _record(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        text = raw.decode("utf-8", "replace")
        content_type = request.headers.get("content-type", "")
        parsed_json: Any = None
        if "json" in content_type and raw:
            try:
                parsed_json = json.loads(raw)
            except ValueError:
                parsed_json = None
        form = dict(parse_qsl(text)) if "x-www-form-urlencoded" in content_type else None
        entry = {
            "method": request.method,
            "path": request.url.path,
            "query": dict(request.query_params),
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body": text,
            "json": parsed_json,
            "form": form,
        }
        with self._lock:
            self._requests.append(entry)
        return entry
