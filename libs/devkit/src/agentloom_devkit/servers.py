"""Serve an ASGI app with uvicorn in a background thread: the base of the fake servers."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any, Self


class ThreadedServer:
    """An ASGI app on a real port (0 picks a free one), started and stopped from a test."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, name: str = "") -> None:
        self._app = app
        self._host = host
        self._port = port
        self._name = name or "threaded-server"
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """http://host:port of the running server."""
        if self.port is None:
            raise RuntimeError(f"{self._name} is not running")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> str:
        import uvicorn

        if self._server is not None:
            return self.url
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        config = uvicorn.Config(
            self._app,
            lifespan="off",
            ws="none",
            http="h11",
            loop="asyncio",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=self._name, daemon=True
        )
        thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError(f"{self._name} did not start")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        self.port = sock.getsockname()[1]
        return self.url

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop serving and wait for the thread; safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = self.port = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout_s)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
