"""Log lines never carry credentials that came in a URL."""

from __future__ import annotations

from agentloom_common.logging import redact


def test_credentials_in_a_query_string_are_masked() -> None:
    line = '127.0.0.1:5 - "WebSocket /ws?token=agl_abc_DEF-123" [accepted]'
    assert redact(line) == '127.0.0.1:5 - "WebSocket /ws?token=[REDACTED]" [accepted]'
    assert redact("/x?a=1&API_KEY=zz&b=2") == "/x?a=1&API_KEY=[REDACTED]&b=2"
    assert redact("/x?tokens=1") == "/x?tokens=1"
