"""Logging: one JSON object per line, with the request id of the call being served."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from typing import Any

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

# Credentials that can travel in a URL's query (a browser's WebSocket cannot set headers):
# servers log request lines, so their values are masked in every message.
_SECRET_QUERY = re.compile(r"([?&](?:token|api_key|access_token)=)[^&\s\"']+", re.IGNORECASE)
# A credential in a logged header ("authorization: Bearer ...", "x-api-key: ...").
_SECRET_HEADER = re.compile(
    r"((?:authorization|x-api-key|x-agentloom-internal-token)\s*:\s*(?:bearer\s+)?)[^\s\"']+",
    re.IGNORECASE,
)


def redact(message: str) -> str:
    return _SECRET_HEADER.sub(r"\1[REDACTED]", _SECRET_QUERY.sub(r"\1[REDACTED]", message))


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(service: str, level: str = "INFO") -> None:
    """Send every log record to stderr as JSON lines tagged with the service name."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiormq logs every reconnect attempt at INFO with connection details.
    logging.getLogger("aiormq").setLevel(logging.WARNING)
    logging.getLogger("aio_pika").setLevel(logging.WARNING)
    # websockets logs every frame, payload included, at DEBUG: events may be megabytes.
    logging.getLogger("websockets").setLevel(logging.INFO)
    # uvicorn's WebSocket protocol logs the same through its own logger, headers included.
    logging.getLogger("uvicorn.error").setLevel(logging.INFO)
