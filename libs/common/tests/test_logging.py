"""Log lines never carry credentials that came in a URL or a header."""

from __future__ import annotations

from agentloom_common.logging import redact


def test_credentials_in_a_query_string_are_masked() -> None:
    line = '127.0.0.1:5 - "WebSocket /ws?token=agl_abc_DEF-123" [accepted]'
    assert redact(line) == '127.0.0.1:5 - "WebSocket /ws?token=[REDACTED]" [accepted]'
    assert redact("/x?a=1&API_KEY=zz&b=2") == "/x?a=1&API_KEY=[REDACTED]&b=2"
    assert redact("/x?tokens=1") == "/x?tokens=1"


def test_credentials_in_logged_headers_are_masked() -> None:
    assert redact("< authorization: Bearer agl_abc_DEF") == "< authorization: Bearer [REDACTED]"
    assert redact("< X-API-Key: agl_secret") == "< X-API-Key: [REDACTED]"
    assert redact("x-agentloom-internal-token: s3cr3t ok") == (
        "x-agentloom-internal-token: [REDACTED] ok"
    )
    assert redact("< host: 127.0.0.1:5") == "< host: 127.0.0.1:5"
